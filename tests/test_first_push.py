"""A new user's first push, executed: no tracking server, the embedded MLflow store carried from job to
job as a workflow artifact, every step with the real code of the actions the workflows pin (checkout,
setup-python, upload-artifact, download-artifact; act_support.py). Every job gets a new workspace
folder, as on a self-hosted runner, so the store must move with the project."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile

import pytest
from mlflow.tracking import MlflowClient

from act_support import run_act
from conftest import SLUG
from test_workflows import OWNER, head, job_result, repository_copy

JOBS = ("train", "gate", "export", "register")


@pytest.fixture(scope="module")
def first_push(baked, tmp_path_factory, act_tools):
    """A push to main with no MLFLOW_TRACKING_URI secret: train -> gate -> export -> register."""
    folder = tmp_path_factory.mktemp("first-push")
    project = repository_copy(baked(framework="sklearn", task="binary"), folder)
    result = run_act(project, folder, "push", "register", tools=act_tools)
    return project, folder, result.returncode, result.stdout + result.stderr


def unzip(folder, artifact: str):
    """A workflow artifact as the artifact server stored it (act's run id is 1)."""
    target = folder / "downloaded" / artifact
    with zipfile.ZipFile(folder / "artifacts" / "1" / artifact / f"{artifact}.zip") as archive:
        archive.extractall(target)
    return target


def test_every_job_runs_with_the_real_actions(first_push):
    _, _, returncode, log = first_push
    assert returncode == 0, log[-8000:]
    assert [job_result(log, job) for job in JOBS] == ["succeeded"] * 4, log[-8000:]
    for job in JOBS:
        label = rf"\[{job}/{job}/[^\]]+\]"
        for step in ("actions/checkout@", "actions/setup-python@", "Install the project"):
            assert re.search(rf"{label}\s+✅\s+Success - Main {re.escape(step)}", log), (job, step)
        assert re.search(rf"{label}\s+\|\s+Successfully set up CPython", log), job
        assert re.search(rf"{label}\s+✅\s+Success - Main Upload the embedded MLflow store", log), job
        if job != "train":
            assert re.search(rf"{label}\s+✅\s+Success - Main Download the embedded MLflow store", log), job
            # A new workspace per job: the store it downloaded recorded the previous job's folder.
            assert re.search(rf"{label}.*the embedded store moved: artifact locations under file://", log), job
            assert re.search(rf"{label}.*attached to run \w+ \(from \$MLFLOW_RUN_ID\)", log), job


def test_one_run_holds_every_stage_and_main_registers_it(first_push):
    project, folder, returncode, log = first_push
    assert returncode == 0, log[-8000:]
    store = unzip(folder, "mlflow-store")  # as the last job (register) left it
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name(SLUG).experiment_id])
    run_id = run.info.run_id
    for stage in ("validate", "train", "evaluate", "gate", "export", "register"):
        assert run.data.tags.get(f"stage.{stage}") == "done", stage
    assert run.data.tags["gate.verdict"] == "passed" and run.data.tags["source_ref"] == "refs/heads/main"

    # The ONNX file: logged in the run, uploaded by export, registered with its digest.
    logged = (store / "mlruns" / run_id / "artifacts" / "onnx" / "model.onnx").read_bytes()
    assert logged == (unzip(folder, "onnx-model") / "model.onnx").read_bytes()
    [version] = client.search_model_versions(f"name = '{SLUG}'")
    assert version.run_id == run_id
    assert client.get_model_version_by_alias(SLUG, "challenger").version == version.version
    assert version.tags == {
        "run_id": run_id,
        "source_ref": "refs/heads/main",
        "git_sha": head(project),
        "gate.verdict": "passed",
        "export.parity": "passed",
        "onnx.sha256": hashlib.sha256(logged).hexdigest(),
    }
    report = unzip(folder, "gate-report")
    assert "PASSED" in (report / "gate.md").read_text() and (report / "comment.md").read_text().startswith("<!--")


def test_a_pull_request_gets_its_comment_body_and_registers_nothing(baked, tmp_path, act_tools):
    """`act pull_request`, artifact mode: train -> gate -> export and the comment job, register skipped.

    The whole workflow runs (act takes one `-j` only, and the comment job does not need export) but
    for `lint-test`, which the copy drops: it is the baked project's own lint and test suite (about
    4.5 min under act), which test_bake.py runs natively. The comment's GitHub API call is the one
    step not executed (`if: ${{ !env.ACT }}`): its body is printed by the step before it.
    """
    project = repository_copy(baked(framework="sklearn", task="binary"), tmp_path)
    ci = project / ".github" / "workflows" / "ci.yml"
    text = ci.read_text()
    start, end = text.index("\n  lint-test:\n"), text.index("\n  train:\n")
    ci.write_text(text[:start] + text[end:])
    repository = {"full_name": f"{OWNER}/{SLUG}"}
    event = tmp_path / "pull-request.json"
    event.write_text(
        json.dumps(
            {
                "number": 7,  # act's github.ref: refs/pull/7/merge
                "pull_request": {
                    "number": 7,
                    "head": {"ref": "feature", "repo": repository},
                    "base": {"ref": "main", "repo": repository},
                },
            }
        )
    )
    result = run_act(project, tmp_path, "pull_request", None, event=event, tools=act_tools)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-8000:]
    assert [job_result(log, job) for job in ("train", "gate", "export")] == ["succeeded"] * 3, log[-8000:]
    comment = "Gate report on the pull request"
    assert job_result(log, comment, reusable=False) == "succeeded", log[-8000:]
    assert job_result(log, "register") is None and "[register/" not in log  # its `if` is false on a PR
    assert re.search(r"\[train/train/[^\]]+\]\s+\|.*git checkout .*refs/remotes/pull/7/merge", log)

    # The body step printed, line for line, what `pr-comment-body` wrote in the gate job.
    body = (unzip(tmp_path, "gate-report") / "comment.md").read_text()
    assert "| check | value | threshold | champion | result |" in body and "| test.roc_auc |" in body
    printed = re.findall(rf"^\[ci/{comment}\]   \| ?(.*)$", log, re.MULTILINE)
    start = printed.index("<!-- credit_model-gate-report -->")
    assert [line.rstrip() for line in printed[start:]] == [line.rstrip() for line in body.splitlines()]
    assert "Main Create or update the comment" not in log  # skipped under act: it needs GitHub's API

    store = unzip(tmp_path, "mlflow-store")  # as export left it
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name(SLUG).experiment_id])
    assert run.data.tags["source_ref"] == "refs/pull/7/merge" and run.data.tags["gate.verdict"] == "passed"
    for stage in ("validate", "train", "evaluate", "gate", "export"):
        assert run.data.tags.get(f"stage.{stage}") == "done", stage
    assert "stage.register" not in run.data.tags
    assert client.search_registered_models() == [] and client.search_model_versions() == []
