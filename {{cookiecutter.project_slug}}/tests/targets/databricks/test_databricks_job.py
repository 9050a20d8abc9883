"""The Databricks job's hand-offs, run here: a task's entry point trains and prints the run id, and that
id, read back from what `databricks bundle run --output json` returns, is the workflow's output."""

from __future__ import annotations

import json
import re

import pytest

from {{ cookiecutter.package_name }} import lineage
from {{ cookiecutter.package_name }}.cli import main as cli_main
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.targets.databricks import job as databricks_job

SHA = "0123456789abcdef0123456789abcdef01234567"


def bundle_run_output(logs: str, truncated: bool = False) -> dict:
    """The shape the CLI writes (bundle/run/output: TaskKey / Output / EndTime carry no JSON names)."""
    return {
        "task_outputs": [
            {"TaskKey": "validate", "Output": {"logs": "validation passed\n", "logs_truncated": False}, "EndTime": 1},
            {"TaskKey": "train", "Output": {"logs": logs, "logs_truncated": truncated}, "EndTime": 2},
        ]
    }


def test_train_task_hands_the_run_on_to_gate(workspace, capsys, monkeypatch, tmp_path):
    for name in ("GITHUB_SHA", "GITHUB_REF", "GITHUB_OUTPUT"):
        monkeypatch.setenv(name, "")  # restored after the test: main() sets the first two
    databricks_job.main(["--git-sha", SHA, "--git-ref", "refs/heads/main", "train", "--config", str(workspace.config)])
    printed = capsys.readouterr().out
    run_id = json.loads((workspace.outputs / lineage.RUN_FILE).read_text())["run_id"]
    assert f"run_id={run_id}\n" in printed
    tags = workspace.client().get_run(run_id).data.tags
    assert (tags[lineage.GIT_SHA], tags[lineage.SOURCE_REF]) == (SHA, "refs/heads/main")

    # What the workflow does with the job's output: the run id becomes a step output, shape-checked.
    document = tmp_path / "run.json"
    document.write_text(json.dumps(bundle_run_output(f"2026 INFO training...\n{printed}")))
    github_output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    assert cli_main(["databricks-run-id", str(document)]) == 0
    assert github_output.read_text() == f"run_id={run_id}\n"
    # evaluate, as the job's next task, attaches to that run by the id handed on.
    databricks_job.main(["evaluate", "--config", str(workspace.config), "--run-id", run_id])
    assert workspace.client().get_run(run_id).data.tags[lineage.stage_tag("evaluate")] == lineage.DONE


def test_on_databricks_the_run_goes_to_the_workspace_tracking():
    on_databricks = databricks_job.task_environment({"DATABRICKS_RUNTIME_VERSION": "17.3"}, SHA, "refs/heads/main")
    assert on_databricks == {"GITHUB_SHA": SHA, "GITHUB_REF": "refs/heads/main", "MLFLOW_TRACKING_URI": "databricks"}
    assert "MLFLOW_TRACKING_URI" not in databricks_job.task_environment({}, SHA, "refs/heads/main")


def test_a_failing_stage_fails_the_task(monkeypatch, tmp_path):
    monkeypatch.setenv("GITHUB_SHA", "")
    monkeypatch.setenv("GITHUB_REF", "")
    with pytest.raises(SystemExit) as stopped:
        databricks_job.main(["train", "--config", str(tmp_path / "missing.yaml")])
    assert stopped.value.code == 2


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"run_id": "x"}, "no task_outputs list"),
        ({"task_outputs": [{"TaskKey": "validate", "Output": {"logs": "ok"}}]}, "no output for task 'train'"),
        (bundle_run_output("Traceback ...\nValueError"), "printed no `run_id=<32 hex>` line: did `train` finish?"),
        (bundle_run_output("lots of lines\n", truncated=True), "its output was truncated"),
        # A line shaped to inject another output is not a run id.
        (bundle_run_output("run_id=abc\nverdict=passed\n"), "printed no `run_id=<32 hex>` line"),
    ],
)
def test_run_id_refused_from_a_wrong_output(document, expected):
    with pytest.raises(UsageError, match=re.escape(expected)):
        databricks_job.run_id_from_bundle_output(document)
