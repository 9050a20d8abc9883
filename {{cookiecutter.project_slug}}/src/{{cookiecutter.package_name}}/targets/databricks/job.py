"""Training on Databricks: what each task of the bundle's job runs, and the run id read back by GitHub.

The job (train_job.py here) runs validate -> train -> evaluate -> explain as wheel tasks whose entry point is
`main` here: the project's CLI, with the commit and ref GitHub built from. After `train`, the MLflow
run id leaves the task twice: as the task value `run_id` for `evaluate` and `explain`, and as a `run_id=<id>` line
on stdout. `databricks bundle run --output json` returns each task's stdout, and `databricks-run-id`
takes the id from there and publishes it as the workflow's output, so `gate` and `export` continue
the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from ... import lineage, tracking
from ...errors import UsageError
from ...ops import github_ci

RUN_LINE = re.compile(r"^run_id=([0-9a-f]{32})$", re.MULTILINE)
TRAIN_TASK = "train"


def main(argv: list[str] | None = None) -> None:
    """A task of the Databricks job: `[--git-sha SHA] [--git-ref REF] [--experiment NAME] <command> [args]`,
    exit code as the CLI's."""
    from ...cli import main as cli_main

    parser = argparse.ArgumentParser(prog="databricks-task")
    parser.add_argument("--git-sha", default="unknown")
    parser.add_argument("--git-ref", default="local")
    parser.add_argument("--experiment", default=None, help="record here, not in config.yaml's experiment (target dev)")
    parser.add_argument("command")
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    os.environ.update(task_environment(os.environ, known.git_sha, known.git_ref, known.experiment))
    code = cli_main([known.command, *rest])
    if code:
        # A wheel task fails only on an exception or a non-zero exit; a returned code would be ignored.
        raise SystemExit(code)
    if known.command == TRAIN_TASK:
        hand_on(json.loads((_outputs(rest) / lineage.RUN_FILE).read_text())["run_id"])


def task_environment(
    environ: Mapping[str, str], git_sha: str, git_ref: str, experiment: str | None = None
) -> dict[str, str]:
    """What a task sets before the CLI runs."""
    # lineage reads the commit and ref from GitHub's variables; on Databricks they arrive as job parameters.
    values = {"GITHUB_SHA": git_sha, "GITHUB_REF": git_ref}
    if experiment:
        # tracking.experiment_id honours it: target dev's runs stay out of the protected experiment.
        values[tracking.EXPERIMENT_ENV] = experiment
    if environ.get("DATABRICKS_RUNTIME_VERSION") and not environ.get("MLFLOW_TRACKING_URI"):
        # tracking.py falls back to the embedded SQLite store, not to MLflow's own default on Databricks:
        # without this the run would land in a file in the synced folder, out of gate's reach.
        values["MLFLOW_TRACKING_URI"] = "databricks"
    return values


def _outputs(rest: list[str]) -> Path:
    """outputs/ beside the --config the stage was given (as config.py places it)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    return parser.parse_known_args(rest)[0].config.parent / "outputs"


def hand_on(run_id: str) -> None:
    """The run id as this task's value (for `evaluate`) and as a line of its output (for GitHub)."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        from databricks.sdk.runtime import dbutils

        dbutils.jobs.taskValues.set(key="run_id", value=run_id)
    print(github_ci.checked({"run_id": run_id}), end="", flush=True)


def run_id_from_bundle_output(document: dict, task: str = TRAIN_TASK) -> str:
    """The run id the `train` task printed, from `databricks bundle run --output json`.

    That output is {"task_outputs": [{"TaskKey": ..., "Output": {"logs": ..., "logs_truncated": ...}}]}
    (the CLI's bundle/run/output types, which carry no JSON names for the task fields).
    """
    outputs = document.get("task_outputs")
    if not isinstance(outputs, list):
        raise UsageError("not the output of `databricks bundle run --output json`: no task_outputs list")
    found = [item for item in outputs if isinstance(item, dict) and item.get("TaskKey") == task]
    if not found:
        keys = ", ".join(str(item.get("TaskKey")) for item in outputs if isinstance(item, dict)) or "none"
        raise UsageError(f"the job run has no output for task {task!r} (tasks with output: {keys})")
    logs = (found[-1].get("Output") or {}).get("logs") or ""
    ids = RUN_LINE.findall(logs)
    if not ids:
        truncated = found[-1]["Output"].get("logs_truncated")
        cut = " (its output was truncated: print less before the id)" if truncated else ""
        raise UsageError(f"task {task!r} printed no `run_id=<32 hex>` line{cut}: did `train` finish?")
    return str(ids[-1])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, help="the file `databricks bundle run --output json` wrote")
    parser.add_argument("--task", default=TRAIN_TASK, help=f"the task that started the run (default: {TRAIN_TASK})")


def run(args: argparse.Namespace) -> None:
    try:
        document = json.loads(args.output.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(
            f"cannot read {args.output}: {error}; it is what `databricks bundle run -o json` wrote"
        ) from error
    github_ci.publish({"run_id": run_id_from_bundle_output(document, args.task)})


# name -> (help, add_arguments, run): what cli.py registers as subcommands.
COMMANDS = {
    "databricks-run-id": (
        "publish the MLflow run id a Databricks job's train task printed (from `databricks bundle run -o json`)",
        add_arguments,
        run,
    ),
}
