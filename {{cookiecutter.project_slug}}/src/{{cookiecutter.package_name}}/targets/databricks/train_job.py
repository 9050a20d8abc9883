"""The training job: the family's stages before gate (job_stages; tabular: validate -> train -> evaluate ->
explain), a wheel task per stage, as `_train.yml` runs them.

Each task is the project's own CLI from its wheel (entry point `{{ cookiecutter.project_slug }}-databricks-task`,
job.py). `train` starts the MLflow run in this workspace's tracking and hands its id on
twice: as the task value `run_id`, which the stages after it attach to, and as a `run_id=<id>` line in its
output, which `databricks bundle run --output json` returns to the GitHub workflow for gate and export.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from databricks.bundles.experiments import MlflowExperiment
from databricks.bundles.jobs import Job, TaskDict

from ... import family
from ...stages import Stage

# The project's root: this file is src/<package>/targets/databricks/train_job.py in the checkout the bundle is
# deployed from (`make setup` installs the package editable into databricks.yml's venv_path).
PROJECT = Path(__file__).resolve().parents[4]
# Uploaded by the bundle's `sync` (databricks.yml); data paths in it are relative to it.
CONFIG = "${workspace.file_path}/config.yaml"
ENVIRONMENT = "project"
# The run id the `train` task sets as a task value (job.py's hand_on), as Databricks resolves it in a parameter.
TRAIN_RUN_ID = "{% raw %}{{tasks.train.values.run_id}}{% endraw %}"


def experiment_name() -> str:
    """config.yaml's experiment: the stages record into it, so the bundle declares the same one."""
    return str(yaml.safe_load((PROJECT / "config.yaml").read_text())["tracking"]["experiment"])


def dev_experiment_name() -> str:
    """Where runs of target dev (branches, pull requests) record: an experiment of their own, beside
    the protected one, so that the dev principal needs no edit right on main's runs."""
    return f"{experiment_name()}-dev"


def stage_task(target: str, stage: str, after: str | None = None, *extra: str) -> TaskDict:
    # prod records into config.yaml's experiment; dev into its own (--experiment, job.py).
    experiment = [] if target == "prod" else ["--experiment", dev_experiment_name()]
    return {
        "task_key": stage,
        "depends_on": [{"task_key": after}] if after else [],
        "environment_key": ENVIRONMENT,
        "python_wheel_task": {
            "package_name": "{{ cookiecutter.project_slug }}",
            "entry_point": "{{ cookiecutter.project_slug }}-databricks-task",
            # The commit and ref GitHub built from, for the run's tags: `register` admits only runs of main.
            "parameters": [
                "--git-sha",
                "{% raw %}{{job.parameters.git_sha}}{% endraw %}",
                "--git-ref",
                "{% raw %}{{job.parameters.git_ref}}{% endraw %}",
                *experiment,
                stage,
                "--config",
                CONFIG,
                *extra,
            ],
        },
    }


def job_stages() -> list[Stage]:
    """The family's stages before gate, as _train.yml runs them. Train continues the run that a stage before
    it opened (tune, when tune.enabled), so of the stages that open the run only the last is a task."""
    stages = list(family.stage_list())
    before_gate = stages[: [stage.name for stage in stages].index("gate")]
    openers = [stage for stage in before_gate if stage.needs == "validate"]  # own(..., opens_run=True)
    return [stage for stage in before_gate if stage not in openers or stage is openers[-1]]


def job_tasks(target: str) -> list[TaskDict]:
    """One task per stage, each after the one before; the stages after train attach to train's run."""
    stages = job_stages()
    tasks: list[TaskDict] = []
    for before, stage in zip([None, *stages[:-1]], stages, strict=True):
        attach = ["--run-id", TRAIN_RUN_ID] if stage.attaches else []
        tasks.append(stage_task(target, stage.name, before.name if before else None, *attach))
    return tasks


def torch_index() -> list[str]:
    """A lock pinning PyTorch's CPU build (`torch==X+cpu`) needs PyTorch's index, the only one that has it."""
    pins = (PROJECT / "requirements.lock").read_text().split()
    cpu_torch = any(pin.startswith("torch==") and pin.endswith("+cpu") for pin in pins)
    return ["--extra-index-url https://download.pytorch.org/whl/cpu"] if cpu_torch else []


def train_job(target: str) -> Job:
    return Job.from_dict(
        {
            "name": "{{ cookiecutter.project_slug }}-train",
            "description": " -> ".join(stage.name for stage in job_stages()) + "; started by _train-databricks.yml",
            "parameters": [
                {"name": "git_sha", "default": "unknown"},
                {"name": "git_ref", "default": "local"},
            ],
            "tasks": [*job_tasks(target)],  # a list of its own: the library types it wider than list[TaskDict]
            # Serverless: the lock's exact versions, then the project's wheel built by the bundle.
            "environments": [
                {
                    "environment_key": ENVIRONMENT,
                    "spec": {
                        "environment_version": "4",
                        "dependencies": [
                            *torch_index(),
                            "-r ${workspace.file_path}/requirements.lock",
                            "dist/*.whl",
                        ],
                    },
                }
            ],
            # One run at a time: the stages share the synced folder's outputs/ (validate's result).
            "max_concurrent_runs": 1,
            "queue": {"enabled": True},
            "timeout_seconds": 3600,
            "tags": {"project": "{{ cookiecutter.project_slug }}", "target": target},
        }
    )


def experiment() -> MlflowExperiment:
    return MlflowExperiment.from_dict({"name": experiment_name()})
