"""`monitor` on a real prediction log (PostgreSQL) and the real MLflow store of a project whose pipeline
ran: rows sent to the project's real server, which logs every request (PREDICTION_LOG_SAMPLE=1), and
their true labels sent back through its /feedback, as a client of the service would.

Held-out rows with their true labels pass; rows whose income and loan purpose moved, and whose
women's labels are flipped (the model's errors grow for one group), fail naming the drifted features
and the fairness threshold; a window with too few rows is no verdict, not a pass.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from act_support import run_act
from conftest import SLUG, cli, held_out_rows
from processes import stop
from test_first_push import unzip
from test_prediction_log_roles import role_urls
from test_request_log import feedback, logged, post, serve
from test_workflows import repository_copy

REQUEST_ROWS = 25  # rows per /predict request: a client scoring a few applications at a time


@pytest.fixture(scope="module")
def deployed(project_with_model):
    """The default project after `pipeline` (conftest's, one run for the session): a registered
    version, its run, its ONNX file. The monitor adds runs of its own to its store."""
    return project_with_model


def store(project: Path) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def held_out(project: Path) -> tuple[str, pd.DataFrame]:
    """The training run's id and its test split, as the stages after `train` re-derive it."""
    run_id = json.loads((project / "outputs" / "run.json").read_text())["run_id"]
    return run_id, pd.read_parquet(held_out_rows(project, run_id, Path(tempfile.mkdtemp())))


def feed(project: Path, url: str, rows: pd.DataFrame, folder: Path) -> None:
    """An empty log, then `rows` sent to the server as /predict requests and their `label`s recorded
    through /feedback by the request ids the server answered with."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS prediction_log, prediction_log_schema")
    cli(project, "prediction-log", "migrate", "--url", url)
    served, process = serve(project, url, folder / "server.log", version="1")  # MODEL_VERSION, as the image sets it
    try:
        sent = []
        for start in range(0, len(rows), REQUEST_ROWS):
            part = rows.iloc[start : start + REQUEST_ROWS]
            records = json.loads(part.drop(columns="label").to_json(orient="records"))
            status, headers, answer = post(f"{served}/predict", {"records": records})
            assert status == 200, answer
            sent.append((headers["x-request-id"], part["label"].tolist()))
        written = logged(url, [request_id for request_id, _ in sent])
        assert len(written) == len(sent), f"{len(written)} of {len(sent)} requests logged"
        for request_id, labels in sent:
            status, _, answer = feedback(served, request_id, labels)
            assert status == 200 and answer["labelled"] == len(labels), answer
    finally:
        stop(process)


def monitor(project: Path, url: str, *args: str):
    return cli(project, "monitor", "--last", "1h", *args, check=False, PREDICTION_LOG_URL=url)


def test_held_out_rows_with_their_labels_pass(deployed, postgres, tmp_path):
    run_id, test = held_out(deployed)
    rows = test.sample(600, random_state=1).rename(columns={"approved": "label"})
    feed(deployed, postgres.url, rows, tmp_path)
    reader = role_urls(deployed, postgres.url, tmp_path)["monitor"]  # the monitor only reads

    result = monitor(deployed, reader)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((deployed / "outputs" / "monitor.json").read_text())
    assert report["status"] == "passed" and report["drifted"] == [] and report["crossed"] == []
    assert report["rows"] == report["labelled_rows"] == 600 and report["training_run_id"] == run_id
    assert {d["column"] for d in report["drift"]} == {*test.columns.drop("approved"), "prediction"}
    assert {c["name"] for c in report["checks"]} >= {"test.roc_auc", "fairness.sex.equalized_odds_difference"}

    client = store(deployed)
    experiment = client.get_experiment_by_name(SLUG).experiment_id
    [recorded] = client.search_runs([experiment], "tags.`monitor.status` = 'passed'")
    assert recorded.info.run_id != run_id  # a run of its own, linked to the model it watched
    tags = recorded.data.tags
    assert tags["monitor.training_run_id"] == run_id and tags["monitor.model_version"] == "1"
    assert recorded.data.metrics["window.rows"] == 600 and "drift.income.psi" in recorded.data.metrics
    assert "fairness.sex.equalized_odds_difference" in recorded.data.metrics


def test_shifted_inputs_and_a_group_with_growing_errors_fail_naming_them(deployed, postgres, tmp_path):
    _, test = held_out(deployed)
    rows = drifted(test)
    feed(deployed, postgres.url, rows, tmp_path)

    result = monitor(deployed, postgres.url)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    reason = result.stderr.split("failed: ", 1)[1]
    assert "drift in " in reason and "income (PSI" in reason and "purpose (PSI" in reason, reason
    assert "age (PSI" not in reason  # a column that did not move is not named
    assert "fairness.sex.equalized_odds_difference = " in reason, reason
    report = json.loads((deployed / "outputs" / "monitor.json").read_text())
    assert report["status"] == "failed" and {"income", "purpose"} <= set(report["drifted"])
    assert "fairness.sex.equalized_odds_difference" in report["crossed"]
    markdown = (deployed / "outputs" / "monitor.md").read_text()
    assert markdown.startswith("## Monitor: FAILED - credit-model version 1") and "| income | number |" in markdown


def test_too_few_rows_is_no_verdict(deployed, postgres, tmp_path):
    _, test = held_out(deployed)
    feed(deployed, postgres.url, test.head(50).rename(columns={"approved": "label"}), tmp_path)
    result = monitor(deployed, postgres.url)
    assert result.returncode == 1 and "no verdict: 50 logged rows" in result.stderr, result.stderr[-3000:]
    assert json.loads((deployed / "outputs" / "monitor.json").read_text())["status"] == "too_few_rows"


def test_labels_from_no_authenticated_source_are_no_verdict_not_a_failure(deployed, postgres, tmp_path):
    """The reported aftermath: rows a stranger logged and labelled made `monitor` fail, which opens an
    issue and dispatches retraining. Labels without an authenticated source (here: the token's labels
    with their source wiped, as labels written to the table any other way have none) are not judged."""
    import psycopg

    _, test = held_out(deployed)
    feed(deployed, postgres.url, drifted(test), tmp_path)  # this window fails on trusted labels (test above)
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute("UPDATE prediction_log SET label_source = NULL WHERE row_index % 10 <> 0")
    result = monitor(deployed, postgres.url)
    assert result.returncode == 1 and "no verdict: not enough trusted labels" in result.stderr, result.stderr[-3000:]
    assert "drift in" not in result.stderr
    report = json.loads((deployed / "outputs" / "monitor.json").read_text())
    assert report["status"] == "untrusted_labels" and report["labelled_rows"] == 800
    assert 0 < report["trusted_labelled_rows"] < 800 * 0.95 and report["crossed"] == []
    markdown = (deployed / "outputs" / "monitor.md").read_text()
    assert markdown.startswith("## Monitor: NO VERDICT (not enough trusted labels)")


def drifted(test: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows whose income and loan purpose moved, with women's labels flipped."""
    rows = test.sample(800, replace=True, random_state=2).reset_index(drop=True)
    rows["income"] = rows["income"] * 1.8
    rows.loc[np.random.default_rng(3).random(len(rows)) < 0.6, "purpose"] = "business"
    approved = rows.pop("approved")
    rows["label"] = approved.where(rows["sex"] != "female", 1 - approved)
    return rows


def result_of(log: str, job: str) -> str | None:
    """How act ended a job of monitor.yml (act pads the names of a workflow's jobs to one width)."""
    found = re.search(rf"\[monitor/{re.escape(job)} *\]\s+🏁\s+Job (succeeded|failed)", log)
    return found.group(1) if found else None


def test_the_monitor_workflow_fails_on_drift_and_reports_it_under_act(baked, deployed, postgres, tmp_path, act_tools):
    """monitor.yml under act with the real actions: the monitor job reads the training run from the
    deployed project's store (the `MLFLOW_TRACKING_URI` secret, read as the registry) and the log from
    PostgreSQL, fails naming what drifted, uploads the report; the issue job builds the issue body from
    it and the retrain job runs; their GitHub API calls are the steps skipped under act."""
    _, test = held_out(deployed)
    feed(deployed, postgres.url, drifted(test), tmp_path)
    project = repository_copy(baked(), tmp_path)
    event = tmp_path / "dispatch.json"
    # GitHub sends a dispatch's inputs as strings (act reads a JSON `true` as false).
    event.write_text(json.dumps({"ref": "refs/heads/main", "inputs": {"last": "1h", "retrain": "true"}}))
    secrets = {"MLFLOW_TRACKING_URI": f"sqlite:///{deployed / 'mlflow.db'}", "PREDICTION_LOG_URL": postgres.url}
    result = run_act(project, tmp_path, "workflow_dispatch", None, "monitor.yml", event, secrets, act_tools)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-8000:]
    jobs = ("Monitor the model in service", "Open or update the monitoring issue", "Start training on main")
    assert [result_of(log, job) for job in jobs] == ["failed", "succeeded", "succeeded"], log[-8000:]
    assert re.search(r"failed: monitor failed: drift in income \(PSI [\d.]+, ks p=[^)]+\), purpose", log), log[-8000:]
    assert "fairness.sex.equalized_odds_difference = " in log and "monitor: failed" in log

    report = unzip(tmp_path, "monitor-report")
    markdown = (report / "outputs" / "monitor.md").read_text()
    printed = re.findall(rf"^\[monitor/{jobs[1]} *\]   \| ?(.*)$", log, re.MULTILINE)
    start = printed.index(markdown.splitlines()[0])
    assert [line.rstrip() for line in printed[start:]][: len(markdown.splitlines())] == [
        line.rstrip() for line in markdown.splitlines()
    ]
    assert "Main Open or update the issue" not in log and "Main Start ci.yml on main" not in log  # GitHub's API
    assert re.search(rf"\[monitor/{jobs[2]} *\]\s+✅\s+Success - Main Say what happens next", log), log[-8000:]
    # The monitor's own run travelled in the artifact: the job's embedded store, linked to the training run.
    uri = f"sqlite:///{report / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    [recorded] = client.search_runs([client.get_experiment_by_name(SLUG).experiment_id])
    assert recorded.data.tags["monitor.status"] == "failed"
    assert recorded.data.tags["monitor.training_run_id"] == held_out(deployed)[0]
    assert recorded.data.metrics["drift.income.drifted"] == 1.0 and recorded.data.metrics["drift.age.drifted"] == 0.0


def test_the_monitor_workflow_reads_only_and_deploys_nothing(baked):
    """What act cannot show (environments, GitHub's API calls), checked by reading monitor.yml."""
    import yaml

    workflow = baked() / ".github" / "workflows" / "monitor.yml"
    spec = yaml.safe_load(workflow.read_text())
    assert set(spec[True]) == {"schedule", "workflow_dispatch"}  # PyYAML reads the key `on` as True
    jobs = spec["jobs"]
    assert jobs["monitor"]["environment"] == "monitoring" and jobs["monitor"]["permissions"] == {"contents": "read"}
    assert jobs["monitor"]["env"]["MLFLOW_TRACKING_URI"] == ""  # the read-only user never logs to the server
    assert jobs["issue"]["permissions"] == {"issues": "write"} and jobs["retrain"]["permissions"] == {
        "actions": "write"
    }
    assert "environment" not in jobs["issue"] and "environment" not in jobs["retrain"]  # no secrets there
    for name in ("issue", "retrain"):
        assert "needs.monitor.outputs.status == 'failed'" in jobs[name]["if"], name
        for step in jobs[name]["steps"]:
            if "gh " in step.get("run", ""):
                assert step["if"] == "${{ !env.ACT }}", (name, step["name"])
    [dispatch] = [step["run"] for step in jobs["retrain"]["steps"] if "gh " in step.get("run", "")]
    assert dispatch == "gh workflow run ci.yml --ref main"
    commands = " ".join(step.get("run", "") for job in jobs.values() for step in job["steps"])
    assert re.findall(r"python -m credit_model (\S+)", commands) == ["monitor"]
    assert sorted(set(re.findall(r"\bgh (\w+ \w+)", commands))) == [
        "issue create",
        "issue edit",
        "issue list",
        "label create",
        "workflow run",
    ]
    assert "kubectl" not in commands and "deploy/" not in commands
    # No reusable workflow or local action but the one that installs the project.
    assert re.findall(r"uses: (\./\S+)", workflow.read_text()) == ["./.github/actions/setup"]
