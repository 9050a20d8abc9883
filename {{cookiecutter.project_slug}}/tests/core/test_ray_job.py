"""Ray's settings and the Ray job's hand-offs that need no cluster: the search space's checks, what the job
is sent, and what the submitter accepts back from a job's log. (The template's tests run a real head.)"""

from __future__ import annotations

import json

import pytest

from {{ cookiecutter.package_name }} import config as configuration
from {{ cookiecutter.package_name }} import lineage
from {{ cookiecutter.package_name }}.errors import CheckFailed, UsageError
from {{ cookiecutter.package_name }}.ops import ray_job


@pytest.mark.parametrize(
    ("space", "problem"),
    [
        ({"learning_rate": {"type": "uniform", "low": 0.3, "high": 0.1}}, "must be below high"),
        ({"learning_rate": {"type": "loguniform", "low": 0.0, "high": 0.1}}, "needs low > 0"),
        ({"max_leaf_nodes": {"type": "int", "low": 7.5, "high": 31}}, "whole numbers"),
        ({"hidden_units": {"type": "choice", "values": []}}, "non-empty `values`"),
        ({"dropout": {"type": "uniform", "values": [0.1]}}, "takes `low` and `high`"),
        ({}, "`space` is empty"),
    ],
)
def test_a_bad_search_space_is_refused_naming_the_key(workspace, space, problem):
    workspace.edit_config(lambda settings: settings.update(tune={"enabled": True, "space": space}))
    with pytest.raises(UsageError, match="tune") as refused:
        configuration.load(workspace.config)
    assert problem in str(refused.value)


def test_the_job_is_sent_the_project_and_the_tracking_server_never_the_local_store(workspace, monkeypatch):
    settings = configuration.load(workspace.config)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(UsageError, match="MLFLOW_TRACKING_URI"):
        ray_job.submit(settings, workspace.config, "train", "http://127.0.0.1:1", data_given=False)
    with pytest.raises(UsageError, match="--data"):
        ray_job.submit(settings, workspace.config, "train", "http://127.0.0.1:1", data_given=True)

    environ = {"MLFLOW_TRACKING_URI": "https://mlflow.example", "HOME": "/root"}
    env = ray_job.runtime_env(settings, environ)
    assert env["working_dir"] == str(settings.root)
    assert {"mlruns/", "mlflow.db", "outputs/", ".venv/"} <= set(env["excludes"])
    assert env["env_vars"]["MLFLOW_TRACKING_URI"] == "https://mlflow.example"
    assert env["env_vars"][lineage.IN_RAY_JOB] == "1"
    assert "HOME" not in env["env_vars"]  # only what the job needs, by name
    assert ray_job.entrypoint("train", workspace.config).endswith("train --config config.yaml")


def test_the_job_carries_the_runs_only_user_never_the_submitters_own(workspace):
    settings = configuration.load(workspace.config)
    writer = {
        "MLFLOW_TRACKING_URI": "https://mlflow.example",
        "MLFLOW_TRACKING_USERNAME": "ci-writer",
        "MLFLOW_TRACKING_PASSWORD": "writer-password-0123",
    }
    with pytest.raises(UsageError, match="RAY_JOB_MLFLOW_USERNAME"):
        ray_job.runtime_env(settings, writer)
    same = {**writer, "RAY_JOB_MLFLOW_USERNAME": "ci-writer", "RAY_JOB_MLFLOW_PASSWORD": "writer-password-0123"}
    with pytest.raises(UsageError, match="own user"):
        ray_job.runtime_env(settings, same)
    runner = {**writer, "RAY_JOB_MLFLOW_USERNAME": "ci-runner", "RAY_JOB_MLFLOW_PASSWORD": "runner-password-0123"}
    env_vars = ray_job.runtime_env(settings, runner)["env_vars"]
    assert env_vars["MLFLOW_TRACKING_USERNAME"] == "ci-runner"
    assert env_vars["MLFLOW_TRACKING_PASSWORD"] == "runner-password-0123"
    assert "writer-password-0123" not in json.dumps(env_vars) and "RAY_JOB_MLFLOW_PASSWORD" not in env_vars


def test_only_the_stages_output_files_come_back_from_a_job_log():
    record = {"run_id": "a" * 32, "experiment_id": "1", "tracking_uri": "https://mlflow.example"}
    logs = f"noise\n{ray_job.MARKER} {lineage.RUN_FILE} {json.dumps(record)}\nmore noise\n"
    assert ray_job.handed_back(logs) == {lineage.RUN_FILE: record}
    with pytest.raises(CheckFailed, match="not one of"):
        ray_job.handed_back(f"{ray_job.MARKER} ..bashrc {json.dumps(record)}\n")
    assert ray_job.address("http://head:8265") == "http://head:8265"


def test_inside_a_job_nothing_is_submitted_again(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    assert ray_job.address(None) == "http://head:8265"
    monkeypatch.setenv(lineage.IN_RAY_JOB, "1")
    assert ray_job.address(None) is None
