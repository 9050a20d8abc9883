"""Ray: the `tune` stage's trials as MLflow child runs, and `tune` + `train` as a job on a real Ray head.

Both run the baked project's own CLI as separate processes, as CI does; everything is read back from
the tracking store with MlflowClient. Kept small (few trials, short boosting) for the suite's budget.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import SLUG, cli, run
from servers import MlflowServer, RayHead

SPACE = {
    "learning_rate": {"type": "loguniform", "low": 0.03, "high": 0.3},
    "max_leaf_nodes": {"type": "int", "low": 7, "high": 31},
}


def tuned_project(baked, folder: Path, trials: int) -> Path:
    project = shutil.copytree(baked(), folder / SLUG)
    settings = yaml.safe_load((project / "config.yaml").read_text())
    settings["model"]["params"]["max_iter"] = 30  # short boosting: the trials' cost is Ray's, not the model's
    settings["tune"] |= {"enabled": True, "trials": trials, "max_concurrent": 2, "space": SPACE}
    (project / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return project


def run_id_of(project: Path) -> str:
    return json.loads((project / "outputs" / "run.json").read_text())["run_id"]


def trained_hyperparameters(project: Path, run_id: str, **env: str) -> dict:
    """The fitted estimator's own settings, read from the model train logged (by the project's loader), and
    `current`: whether the project would hand the tuned run to the next `train` (it must not: it holds a model)."""
    code = (
        "import json, mlflow; from pathlib import Path; from credit_model import config, tracking; "
        "from credit_model.tabular import frameworks; "
        "from credit_model.tabular.stages import tune; settings = config.load(Path('config.yaml')); "
        "tracking.connect(settings); "
        f"run = mlflow.MlflowClient().get_run({run_id!r}); "
        "model = frameworks.load('sklearn').load_model(run.data.tags['model.uri']); "
        "found = {k: v for k, v in model[-1].get_params().items() if isinstance(v, (int, float))}; "
        "print(json.dumps(found | {'current': repr(tune.current(settings))}))"
    )
    return json.loads(run(project, "-c", code, **env).stdout.splitlines()[-1])


def check_tuned_lineage(client: MlflowClient, run_id: str, trials: int, hyperparameters: dict) -> None:
    """`trials` finished child runs under the run, and the model in the run trained with the best one's params."""
    parent = client.get_run(run_id)
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(children) == trials, [c.info.run_id for c in children]
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.tags["tune.trial"] for c in children) == [str(n) for n in range(trials)]
    best = max(children, key=lambda c: c.data.metrics["validation.roc_auc"])
    assert parent.data.metrics["tune.best.validation.roc_auc"] == best.data.metrics["validation.roc_auc"]
    for key in SPACE:
        assert parent.data.params[f"tune.best.{key}"] == best.data.params[f"model.{key}"]
        assert parent.data.params[f"model.{key}"] == best.data.params[f"model.{key}"]
        assert float(hyperparameters[key]) == pytest.approx(float(best.data.params[f"model.{key}"]), rel=1e-12)
    assert hyperparameters["max_iter"] == 30  # model.params the search left alone
    assert parent.data.tags["stage.tune"] == parent.data.tags["stage.train"] == "done"
    # The searched run holds a model now: the next train must search again in a new run, not reuse this one.
    assert hyperparameters["current"] == "None"


def test_tune_records_each_trial_as_a_child_run_and_train_uses_the_best(baked, tmp_path):
    project = tuned_project(baked, tmp_path, trials=3)
    cli(project, "train")  # runs validate, then tune (a local Ray instance), then train in tune's run
    run_id = run_id_of(project)
    store = f"sqlite:///{project / 'mlflow.db'}"
    check_tuned_lineage(MlflowClient(store), run_id, 3, trained_hyperparameters(project, run_id))


@pytest.fixture
def cluster(tmp_path_factory):
    """A real MLflow tracking server and a real Ray head, both on loopback, both stopped afterwards."""
    folder = tmp_path_factory.mktemp("ray-cluster")
    tracking = MlflowServer(f"sqlite:///{folder / 'mlflow.db'}", folder)
    head = RayHead(Path(tempfile.mkdtemp(prefix="ray-head-")))
    try:
        tracking.start()
        head.start()
        print(f"\nmlflow server start: {tracking.startup_seconds[0]:.1f} s; ray head: {head.startup_seconds:.1f} s")
        yield tracking, head
    finally:
        head.stop()
        tracking.stop()
        shutil.rmtree(head.folder, ignore_errors=True)


def test_train_as_a_ray_job_lands_one_lineage_that_gate_and_export_continue(baked, tmp_path, cluster):
    tracking, head = cluster
    project = tuned_project(baked, tmp_path, trials=2)
    env = {"MLFLOW_TRACKING_URI": tracking.uri, **head.client_env}

    submitted = cli(project, "train", **env)  # $RAY_ADDRESS set: validate, tune and train run in the job
    run_id = run_id_of(project)
    assert "Ray job credit-model-train-" in submitted.stderr
    assert not (project / "mlflow.db").exists()  # nothing was recorded here
    client = MlflowClient(tracking.uri)
    check_tuned_lineage(client, run_id, 2, trained_hyperparameters(project, run_id, MLFLOW_TRACKING_URI=tracking.uri))
    assert json.loads((project / "outputs" / "run.json").read_text())["tracking_uri"] == tracking.uri

    # The rest of the pipeline runs here, as CI's later jobs do, attaching through outputs/run.json.
    for stage in ("evaluate", "gate", "export"):
        cli(project, stage, MLFLOW_TRACKING_URI=tracking.uri)
    tags = client.get_run(run_id).data.tags
    assert tags["gate.verdict"] == tags["export.parity"] == "passed"
    assert tags["stage.evaluate"] == tags["stage.export"] == "done"

    # The job's run cannot go to a store that dies with the job: refused before anything is sent.
    refused = cli(project, "train", check=False, **head.client_env)
    assert refused.returncode == 2
    assert "MLFLOW_TRACKING_URI" in refused.stderr and "cannot record into the local store" in refused.stderr
