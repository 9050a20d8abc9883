"""train_on=databricks, checked without a workspace: the bundle's Python resources load the way the
Databricks CLI loads them (databricks-bundles' own loader, which refuses unknown keys), a misspelt key
fails with the library's message, the job's tasks hand the run on as the package expects, the bake is
lint-clean and its own Databricks tests pass; the default bake has none of it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import PACKAGE, SLUG, project_env, wheel

TARGET = f"src/{PACKAGE}/targets/databricks"
# The target's folder, its tests, its workflow, and databricks.yml at the root (the bundle's root).
BUNDLE_FILES = ("databricks.yml", TARGET, "tests/targets/databricks", ".github/workflows/_train-databricks.yml")


@pytest.fixture(scope="module")
def project(baked) -> Path:
    return baked(train_on="databricks")


def load_bundle(project: Path, target: str, folder: Path) -> tuple[int, dict, list[dict]]:
    """What `databricks bundle deploy` does first: databricks.yml as JSON in, the resources' Python run by
    `python -m databricks.bundles.build` (the venv's, where `make setup` installed the package; cwd the bundle
    root), the expanded bundle out."""
    config = yaml.safe_load((project / "databricks.yml").read_text())
    config["bundle"]["target"] = target
    paths = {name: folder / f"{target}-{name}.json" for name in ("input", "output", "diagnostics", "locations")}
    paths["input"].write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "databricks.bundles.build", "--phase", "load_resources"]
        + [f"--{name}={path}" for name, path in paths.items()],
        cwd=project,
        env=project_env(project),
        capture_output=True,
        text=True,
        timeout=120,
    )
    diagnostics = [json.loads(line) for line in paths["diagnostics"].read_text().splitlines() if line.strip()]
    return result.returncode, json.loads(paths["output"].read_text()), diagnostics


def test_bundle_resources_load_as_the_cli_loads_them(project, tmp_path):
    from databricks.bundles.jobs import Job

    scripts = tomllib.loads((project / "pyproject.toml").read_text())["project"]["scripts"]
    experiment = yaml.safe_load((project / "config.yaml").read_text())["tracking"]["experiment"]
    for target in ("dev", "prod"):
        code, bundle, diagnostics = load_bundle(project, target, tmp_path)
        assert (code, diagnostics) == (0, []), (target, diagnostics)
        resources = bundle["resources"]
        # The library's strict loader (unknown keys refused) reads back what the Python wrote.
        job = Job.from_dict(resources["jobs"]["train"])
        tasks = {task.task_key: task for task in job.tasks}
        assert list(tasks) == ["validate", "train", "evaluate", "explain"]
        depends = [[d.task_key for d in task.depends_on] for task in job.tasks]
        assert depends == [[], ["validate"], ["train"], ["evaluate"]]
        # prod records into config.yaml's experiment; dev (branches, pull requests) into its own.
        own = [] if target == "prod" else ["--experiment", f"{experiment}-dev"]
        for name, task in tasks.items():
            wheel = task.python_wheel_task
            assert wheel.package_name == SLUG and scripts[wheel.entry_point] == f"{PACKAGE}.targets.databricks.job:main"
            assert wheel.parameters[4 : len(own) + 7] == [*own, name, "--config", "${workspace.file_path}/config.yaml"]
        for attached in ("evaluate", "explain"):
            assert tasks[attached].python_wheel_task.parameters[-2:] == ["--run-id", "{{tasks.train.values.run_id}}"]
        assert job.max_concurrent_runs == 1  # the tasks share the synced folder's outputs/
        (environment,) = job.environments
        assert environment.spec.dependencies == ["-r ${workspace.file_path}/requirements.lock", "dist/*.whl"]
        # Development mode would prefix a declared experiment's name: declared in prod only, as config.yaml names it.
        declared = [item["name"] for item in resources.get("experiments", {}).values()]
        assert declared == ([experiment] if target == "prod" else [])
    assert experiment == f"/Shared/{SLUG}"


def test_the_job_runs_the_familys_stages_and_finds_cpu_torch_on_its_index(baked, tmp_path):
    """The tasks are the project's family's stages before gate (reinforcement learning explains nothing), and
    a lock pinning PyTorch's CPU build gets the one index that has it."""
    from databricks.bundles.jobs import Job

    project = baked(task="reinforcement", framework="pytorch", train_on="databricks")
    code, bundle, diagnostics = load_bundle(project, "prod", tmp_path)
    assert (code, diagnostics) == (0, []), diagnostics
    job = Job.from_dict(bundle["resources"]["jobs"]["train"])
    assert [task.task_key for task in job.tasks] == ["validate", "train", "evaluate"]
    assert job.description == "validate -> train -> evaluate; started by _train-databricks.yml"
    (environment,) = job.environments
    assert environment.spec.dependencies[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"


def test_a_misspelt_key_fails_with_the_librarys_message(project, tmp_path):
    broken = shutil.copytree(project, tmp_path / SLUG)
    source = broken / TARGET / "train_job.py"
    source.write_text(source.read_text().replace('"max_concurrent_runs"', '"max_concurent_runs"'))
    code, _, diagnostics = load_bundle(broken, "prod", tmp_path)
    assert code == 1
    assert [d["severity"] for d in diagnostics] == ["error"]
    assert "Unexpected field 'max_concurent_runs' for class Job" in diagnostics[0]["summary"] + diagnostics[0].get(
        "detail", ""
    )


def test_the_wheel_the_bundle_builds_has_the_tasks_entry_point(project, tmp_path):
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".yml", ".yaml", ".toml", ".md"}:
            text = path.read_text()
            assert "{%" not in text and "cookiecutter." not in text, f"unrendered Jinja in {path}"
    # databricks.yml's artifact build command; Databricks finds the task's entry point in the wheel's metadata.
    names, entry_points = wheel(project, tmp_path)
    assert f"{SLUG}-databricks-task = {PACKAGE}.targets.databricks.job:main" in entry_points
    assert f"{PACKAGE}/targets/databricks/job.py" in names


def test_databricks_bake_is_lint_clean_and_its_own_tests_pass(project):
    bin_ = Path(sys.executable).parent
    for command in (
        [bin_ / "ruff", "check", "src", "tests"],
        [bin_ / "ruff", "format", "--check", "src", "tests"],
        [sys.executable, "-m", "mypy", TARGET],  # the project's own settings (pyproject.toml)
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/targets/databricks"],
    ):
        result = subprocess.run(
            [str(part) for part in command],
            cwd=project,
            env=project_env(project),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"


def test_the_default_bake_trains_on_github_only(baked):
    default = baked()
    assert not [name for name in BUNDLE_FILES if (default / name).exists()]
    text = "".join(path.read_text() for path in (default / ".github" / "workflows").glob("*.yml"))
    assert "DATABRICKS" not in text and "_train-databricks" not in text


def test_branch_runs_record_apart_and_the_job_parameters_cannot_be_injected(project, tmp_path):
    """Issue 27, item 2, what runs here: the task entry point's --experiment reaches the stage that
    creates the run (a real `train` into a local store), and the workflow passes each job parameter
    as one argument (a ref holding a comma stays one value)."""
    from databricks.bundles.jobs import Job
    from mlflow.tracking import MlflowClient

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(project / "config.yaml", work / "config.yaml")
    shutil.copytree(project / "data", work / "data")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ref = "refs/heads/a,git_sha=evil"  # what `--params git_ref=...,` would have split
    code = (
        f"from {PACKAGE}.targets.databricks import job; job.main(['--git-sha', {'a' * 40!r}, "
        f"'--git-ref', {ref!r}, '--experiment', '/Shared/{SLUG}-dev', 'train', '--config', 'config.yaml'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        env=project_env(project, MLFLOW_TRACKING_URI=store),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store)
    assert client.get_experiment_by_name(f"/Shared/{SLUG}") is None  # the protected experiment: untouched
    [run] = client.search_runs([client.get_experiment_by_name(f"/Shared/{SLUG}-dev").experiment_id])
    assert run.data.tags["source_ref"] == ref and f"run_id={run.info.run_id}" in result.stdout

    _, bundle, _ = load_bundle(project, "dev", tmp_path)
    job = Job.from_dict(bundle["resources"]["jobs"]["train"])
    train = next(task for task in job.tasks if task.task_key == "train").python_wheel_task.parameters
    assert train[:4] == ["--git-sha", "{{job.parameters.git_sha}}", "--git-ref", "{{job.parameters.git_ref}}"]

    workflow = yaml.safe_load((project / ".github" / "workflows" / "_train-databricks.yml").read_text())
    steps = workflow["jobs"]["train"]["steps"]
    run = next(step["run"] for step in steps if step.get("name", "").startswith("Run the job"))
    assert '-- "--git_sha=$GITHUB_SHA" "--git_ref=$GITHUB_REF"' in run and "--params" not in run


def test_register_takes_the_digest_from_exports_job_output(project):
    """The Databricks run sits in an experiment others may edit: register checks the file against the
    digest export's job published (the swap itself is the generated project's test_failures.py)."""
    folder = project / ".github" / "workflows"
    export = yaml.safe_load((folder / "_export.yml").read_text())
    assert export[True]["workflow_call"]["outputs"]["onnx_sha256"]["value"] == "${{ jobs.export.outputs.onnx_sha256 }}"
    assert export["jobs"]["export"]["outputs"]["onnx_sha256"] == "${{ steps.digest.outputs.onnx_sha256 }}"
    register = yaml.safe_load((folder / "_register.yml").read_text())
    assert register[True]["workflow_call"]["inputs"]["onnx-sha256"]["required"] is True
    steps = register["jobs"]["register"]["steps"]
    assert any('register --onnx-sha256 "$ONNX_SHA256"' in step.get("run", "") for step in steps)
    assert register["jobs"]["register"]["env"]["ONNX_SHA256"] == "${{ inputs.onnx-sha256 }}"
    for caller in ("ci.yml", "release.yml"):
        job = yaml.safe_load((folder / caller).read_text())["jobs"]["register"]
        assert job["with"]["onnx-sha256"] == "${{ needs.export.outputs.onnx_sha256 }}", caller


def test_databricks_train_job_logs_in_with_oidc_through_the_pinned_cli(project):
    """test_workflows' security rules run on this bake too (its option variants); here, the train job's own."""
    train = yaml.safe_load((project / ".github" / "workflows" / "_train-databricks.yml").read_text())["jobs"]["train"]
    assert train["permissions"] == {"contents": "read", "id-token": "write"}
    assert "databricks/setup-cli@6bb7075f85b326f8b9ce160933dfe9bcd63c8121" in yaml.safe_dump(train)
