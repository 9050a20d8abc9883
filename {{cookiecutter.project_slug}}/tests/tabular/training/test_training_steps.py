"""The steps a training run composes (tabular/training/), each alone: tune's best params and the run it
continues, a start from a trained base, and what the run records about differential privacy. No pipeline
runs here; the run's MLflow store is the workspace's own SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }} import lineage, tracking
from {{ cookiecutter.package_name }}.config import Tracking
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.stages import train
from {{ cookiecutter.package_name }}.tabular import config as configuration
from {{ cookiecutter.package_name }}.tabular.config import Column, Config, Data, Model, Privacy
from {{ cookiecutter.package_name }}.tabular.dataio.data import Schema
from {{ cookiecutter.package_name }}.tabular.training import privacy, transfer, tuned

# --- tuned parameters --------------------------------------------------------------------------------


def test_the_searched_values_replace_only_their_own_keys(workspace):
    settings = configuration.load(workspace.config)
    shipped = dict(settings.model.params)
    searched = next(iter(shipped))  # any key config.yaml writes: the search's value must win over it
    found = tuned.Tuned(run_id="0123abcd", best_params={searched: "searched", "added": 7})

    updated = tuned.with_best_params(settings, found)
    assert updated.model.params == shipped | {searched: "searched", "added": 7}
    assert settings.model.params == shipped  # the config read from the file is left as it was
    assert tuned.with_best_params(settings, None) is settings


def test_training_continues_tunes_run_or_starts_its_own(workspace):
    settings = configuration.load(workspace.config)
    client = tracking.connect(settings)
    parent = client.create_run(tracking.experiment_id(settings, client)).info.run_id

    with train.open_run(settings, client, continued=parent) as active:
        assert active.info.run_id == parent
    with train.open_run(settings, client) as active:
        fresh = active.info
    assert fresh.run_id != parent and fresh.experiment_id == tracking.experiment_id(settings, client)


def test_without_tune_there_is_no_search_to_continue(workspace):
    assert tuned.for_training(configuration.load(workspace.config)) is None


# --- transfer from a base ----------------------------------------------------------------------------

BASE = transfer.Base("models:/credit@champion", "models:/m-0123abcd", "0123456789abcdef", "3", "sklearn")


def store_client(tmp_path: Path, empty_store: Path) -> mlflow.MlflowClient:
    database = tmp_path / "mlflow.db"
    database.write_bytes(empty_store.read_bytes())
    uri = f"sqlite:///{database}"
    return mlflow.MlflowClient(uri, registry_uri=uri)


def test_a_training_without_init_from_starts_from_scratch(tmp_path, empty_store):
    client = store_client(tmp_path, empty_store)
    assert transfer.base_for(client, Model(framework="sklearn"), private=False) is None
    assert transfer.lineage_of(None) == {}
    assert transfer.lineage_of(BASE) == BASE.lineage()


def test_a_base_with_dp_sgd_is_refused_before_the_registry_is_asked(tmp_path, empty_store):
    client = store_client(tmp_path, empty_store)  # empty: the reference would not resolve
    settings = Model(framework="pytorch", init_from="models:/credit@champion")
    with pytest.raises(UsageError, match="model.init_from with privacy.enabled.*remove one of them"):
        transfer.base_for(client, settings, private=True)
    with pytest.raises(UsageError, match="was not found"):
        transfer.base_for(client, settings, private=False)


def test_the_base_is_taken_as_model_init_from_trust_says(tmp_path, empty_store, monkeypatch):
    client = store_client(tmp_path, empty_store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    run = client.create_run(client.create_experiment("base"), tags={lineage.FRAMEWORK: "sklearn"}).info.run_id
    client.set_tag(run, lineage.MODEL_URI, "models:/m-0123abcd")
    reference = f"runs:/{run}/model"

    with pytest.raises(UsageError, match="a run's model"):
        transfer.base_for(client, Model(framework="sklearn", init_from=reference), private=False)
    vouched = Model(framework="sklearn", init_from=reference, init_from_trust="any")
    base = transfer.base_for(client, vouched, private=False)
    assert base == transfer.Base(reference, "models:/m-0123abcd", run, None, "sklearn")
    with pytest.raises(UsageError, match="is a sklearn model, and this project trains pytorch"):
        transfer.base_for(client, vouched.model_copy(update={"framework": "pytorch"}), private=False)


# --- differential privacy ----------------------------------------------------------------------------


def test_every_run_says_whether_it_was_trained_with_dp():
    assert privacy.params(Privacy()) == {lineage.PRIVACY_ENABLED: False}
    assert privacy.params(Privacy(enabled=True, target_epsilon=2.0)) == {
        lineage.PRIVACY_ENABLED: True,
        "privacy.target_epsilon": 2.0,
        "privacy.target_delta": 1e-5,
        "privacy.max_grad_norm": 1.0,
    }
    assert privacy.params(Privacy(report_epsilon=0.5)) == {
        lineage.PRIVACY_ENABLED: False,
        "privacy.report_epsilon": 0.5,
    }


def with_groups(report_epsilon: float | None) -> Config:
    columns = {"group": Column(type="string", values=["a", "b"]), "y": Column(type="number", values=[0, 1])}
    return Config(
        task="binary",
        data=Data(path=Path("table.csv"), target="y", sensitive_features=["group"], columns=columns),
        model=Model(framework="sklearn"),
        privacy=Privacy(report_epsilon=report_epsilon),
        tracking=Tracking(experiment="units", model_name="units"),
    )


GROUPS = Schema(task="binary", target="y", columns={"group": Column(type="string")}, sensitive=["group"])
ROWS = pd.DataFrame({"group": ["a"] * 60 + ["b"] * 40, "y": np.asarray([1, 0] * 50, dtype=float)})


def test_group_statistics_are_released_only_with_a_budget_for_them():
    assert privacy.group_statistics(with_groups(None), ROWS, GROUPS) is None
    released = privacy.group_statistics(with_groups(2.0), ROWS, GROUPS)
    assert released is not None and released["epsilon"] == 2.0 and set(released["features"]) == {"group"}


def test_released_statistics_are_the_runs_artifact(workspace, tmp_path):
    settings = configuration.load(workspace.config)
    client = tracking.connect(settings)
    released = {"epsilon": 1.0, "features": {}}
    with mlflow.start_run(experiment_id=tracking.experiment_id(settings, client)) as active:
        privacy.log_group_statistics(None)
        assert client.list_artifacts(active.info.run_id) == []
        privacy.log_group_statistics(released)
    saved = client.download_artifacts(active.info.run_id, lineage.GROUP_STATS_ARTIFACT, str(tmp_path))
    assert json.loads(Path(saved).read_text()) == released
