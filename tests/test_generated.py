"""Inside baked projects: their own tests, the whole pipeline per task, and stages as separate processes."""

from __future__ import annotations

import json
import shutil
import subprocess

import onnxruntime as ort
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import SLUG, cli, project_env

STAGES = ["validate", "train", "evaluate", "explain", "gate", "export", "register"]


def read_run(project):
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    run_id = json.loads((project / "outputs" / "run.json").read_text())["run_id"]
    return client, client.get_run(run_id)


# Each bake's own suite runs in test_user_install.py, in the venv its own `make setup` makes.


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_pipeline_runs_for_each_task(tmp_path, baked, task):
    project = shutil.copytree(baked(task=task), tmp_path / SLUG)
    result = cli(project, "pipeline")
    assert "pipeline done" in result.stderr

    settings = yaml.safe_load((project / "config.yaml").read_text())
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"))
    expected_inputs = [c for c in settings["data"]["columns"] if c != settings["data"]["target"]]
    assert [i.name for i in session.get_inputs()] == expected_inputs
    outputs = {o.name for o in session.get_outputs()}
    assert outputs == ({"prediction"} if task == "regression" else {"label", "probabilities"})

    assert json.loads((project / "outputs" / "gate.json").read_text())["passed"]
    assert json.loads((project / "outputs" / "registered.json").read_text())["model_version"] == "1"
    client, mlflow_run = read_run(project)
    assert all(mlflow_run.data.tags[f"stage.{stage}"] == "done" for stage in STAGES)
    assert mlflow_run.data.metrics["export.parity_max_abs_diff"] <= settings["export"]["parity_tolerance"]
    assert client.get_model_version_by_alias(SLUG, "challenger").tags["run_id"] == mlflow_run.info.run_id
    assert (project / "mlruns").is_dir()  # artifacts beside the store, not in the caller's folder


def test_stages_as_separate_processes_make_one_run(tmp_path, baked):
    project = shutil.copytree(baked(), tmp_path / SLUG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for stage in STAGES:
        # From another folder, as a CI job might: the config locates the project and its store.
        subprocess.run(
            ["python", "-m", "credit_model", stage, "--config", str(project / "config.yaml")],
            cwd=elsewhere,
            env=project_env(project),
            check=True,
            capture_output=True,
        )
    client, mlflow_run = read_run(project)
    assert all(mlflow_run.data.tags[f"stage.{stage}"] == "done" for stage in STAGES)
    experiment = client.get_experiment_by_name(SLUG)
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert not (elsewhere / "mlruns").exists() and not (elsewhere / "mlflow.db").exists()


def test_makefile_drives_the_cli(tmp_path, baked):
    project = shutil.copytree(baked(), tmp_path / SLUG)
    env = project_env(project)
    result = subprocess.run(["make", "validate", "PYTHON=python"], cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((project / "outputs" / "validation.json").read_text())["success"] is True
