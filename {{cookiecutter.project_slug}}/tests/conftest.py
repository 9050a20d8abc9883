"""Each test works on a copy of the project's config and data in a temporary folder, so the real
project's outputs/ and MLflow store are never touched, and tests do not see each other's runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from {{ cookiecutter.package_name }}.cli import main

PROJECT = Path(__file__).resolve().parents[1]


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self.config = root / "config.yaml"

    def cli(self, *args: str) -> int:
        command, *rest = args
        return main([command, "--config", str(self.config), *rest])

    def edit_config(self, change) -> None:
        settings = yaml.safe_load(self.config.read_text())
        change(settings)
        self.config.write_text(yaml.safe_dump(settings, sort_keys=False))

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def client(self) -> MlflowClient:
        # The registry URI must be given too: left out, it is whatever an earlier test set globally.
        return MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)


def make_workspace(folder: Path, store: Path | None = None) -> Workspace:
    """A copy of the project's config and data in `folder`; with `store` (the `empty_store` fixture's file), the
    workspace's MLflow store starts as a copy of it instead of being made, migrations and all, by the first stage."""
    shutil.copy(PROJECT / "config.yaml", folder / "config.yaml")
    if store is not None:
        shutil.copy(store, folder / "mlflow.db")
    if (PROJECT / "data").is_dir():  # a reinforcement-learning project has no table: its environment is its data
        shutil.copytree(PROJECT / "data", folder / "data")
    return Workspace(folder)


ISOLATED = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "GITHUB_STEP_SUMMARY")


def _forget_tracking_settings() -> None:
    # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI: without this, the next test would
    # record into the previous test's store.
    for name in ISOLATED:
        os.environ.pop(name, None)


@pytest.fixture(autouse=True, scope="session")
def _embedded_store():
    """Tests always use their workspace's SQLite store, never a server configured in the shell."""
    saved = {name: os.environ[name] for name in ISOLATED if name in os.environ}
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    _forget_tracking_settings()
    yield
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _fresh_tracking_settings():
    _forget_tracking_settings()
    yield
    # MLflow starts a run of its own when something logs outside one (a framework's epoch metrics, called by
    # a unit test without the stage around it) and keeps it active: the next test's start_run would refuse.
    while mlflow.active_run() is not None:
        mlflow.end_run()
    _forget_tracking_settings()


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """A new MLflow SQLite file, its tables made once: MLflow's migrations take seconds per new store, so a test
    that fills a store of its own starts from a copy of this one (never from this file itself). Made by MLflow's
    own client: core/test_tracking_store.py compares the store tracking.py makes with it."""
    database = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    uri = f"sqlite:///{database}"
    MlflowClient(uri, registry_uri=uri).search_registered_models()
    return database


@pytest.fixture
def workspace(tmp_path, empty_store) -> Workspace:
    return make_workspace(tmp_path, empty_store)


@pytest.fixture
def new_workspace(tmp_path) -> Workspace:
    """A workspace with no MLflow store yet, as a new project is: its first stage makes the store."""
    (tmp_path / "project").mkdir()
    return make_workspace(tmp_path / "project")


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, empty_store) -> Workspace:
    """One full pipeline on the bundled data, shared by the tests that only read its results."""
    space = make_workspace(tmp_path_factory.mktemp("pipeline"), empty_store)
    _forget_tracking_settings()
    assert space.cli("pipeline") == 0
    return space


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, empty_store) -> Workspace:
    """validate, train and evaluate once, for tests that judge, export, register and serve that one run."""
    space = make_workspace(tmp_path_factory.mktemp("evaluated"), empty_store)
    _forget_tracking_settings()
    for stage in ("validate", "train", "evaluate"):
        assert space.cli(stage) == 0, stage
    return space
