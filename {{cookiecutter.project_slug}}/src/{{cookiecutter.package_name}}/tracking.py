"""Where runs are recorded, and how each stage finds the run that `train` started.

One pipeline execution is one MLflow run. Stages are separate processes (separate CI jobs), so the
run id travels explicitly: --run-id, else $MLFLOW_RUN_ID, else outputs/run.json written by `train`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
from mlflow.tracking import MlflowClient

from . import lineage, managed_tracking
from .config import Config
from .errors import UsageError

log = logging.getLogger(__name__)


def embedded_uri(config: Config) -> str:
    """The SQLite store inside the project (absolute, so a stage can run from any folder)."""
    return f"sqlite:///{(config.root / 'mlflow.db').resolve()}"


def tracking_uri(config: Config) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or embedded_uri(config)


# Where the embedded store records an artifact location: (table, column).
_LOCATIONS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
)


def relocate_embedded_store(config: Config) -> list[str]:
    """Point the embedded store at this project's own `mlruns/` when the folder has moved; returns the old roots.

    MLflow records every artifact location as an absolute path (a relative one is resolved against the
    working directory when the experiment is created; MLflow has no relative artifact root). Copied to
    another folder (the next CI job's workspace under act or on a self-hosted runner, a colleague's
    checkout), the store would still read the old folder: "Failed to download artifacts". The store is
    this project's own SQLite file, so its recorded root, where it is not this folder's `mlruns/`, is
    rewritten to it in every table that records one, before MLflow reads anything.
    """
    database = config.root / "mlflow.db"
    if not database.is_file():
        return []
    here = (config.root / "mlruns").resolve()
    with closing(sqlite3.connect(database)) as db, db:
        # The experiments `experiment_id` below created: their location is `file://<project>/mlruns`.
        recorded = {row[0] for row in db.execute("SELECT artifact_location FROM experiments")}
        moved = sorted(uri for uri in recorded if uri.startswith("file://") and uri.endswith("/mlruns"))
        moved = [uri for uri in moved if uri != here.as_uri()]
        for old in moved:
            # Runs in an experiment of MLflow's own making may record a plain path instead of a URI.
            for before, after in ((old, here.as_uri()), (url2pathname(urlparse(old).path), str(here))):
                for table, column in _LOCATIONS:  # fixed names; the values are bound
                    db.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                        f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                        (after, len(before) + 1, before, len(before) + 1, before + "/"),
                    )
    return moved


def connect(config: Config) -> MlflowClient:
    uri = tracking_uri(config)
    managed_tracking.check(uri)
    if uri == embedded_uri(config):
        for old in relocate_embedded_store(config):
            log.info("the embedded store moved: artifact locations under %s now point to %s", old, config.root)
    # set_registry_uri also exports $MLFLOW_REGISTRY_URI, which reference_client reads as the caller's
    # (the team registry a branch run takes the champion from): put back what the caller had, or nothing.
    # MLflow itself keeps registering into `uri`.
    reference = os.environ.get("MLFLOW_REGISTRY_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if reference is None:
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
    else:
        os.environ["MLFLOW_REGISTRY_URI"] = reference
    return MlflowClient(uri)


def reference_client(config: Config) -> MlflowClient:
    """Where the champion is read from: $MLFLOW_REGISTRY_URI when set, else the tracking store.

    Branch and pull-request CI runs track in the embedded store but read the team registry with
    read-only credentials (README, "Trust model"): they compare with the champion and write nothing.
    """
    uri = os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri(config)
    managed_tracking.check(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# MLflow's own variable for the experiment to record into; set, it replaces config.yaml's (the
# Databricks job's target dev records into an experiment of its own this way).
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"


def experiment_id(config: Config, client: MlflowClient) -> str:
    name = os.environ.get(EXPERIMENT_ENV) or config.tracking.experiment
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # The embedded store keeps artifacts beside its database, not in whatever folder a stage ran from;
    # a server decides for itself.
    embedded = tracking_uri(config) == embedded_uri(config)
    location = (config.root / "mlruns").resolve().as_uri() if embedded else None
    return client.create_experiment(name, artifact_location=location)


@dataclass(frozen=True)
class RunRef:
    run_id: str
    source: str  # where the id came from, for the log line


def find_run(config: Config, run_id: str | None) -> RunRef:
    if run_id:
        return RunRef(run_id, "--run-id")
    if os.environ.get("MLFLOW_RUN_ID"):
        return RunRef(os.environ["MLFLOW_RUN_ID"], "$MLFLOW_RUN_ID")
    state = config.outputs / lineage.RUN_FILE
    if state.is_file():
        return RunRef(json.loads(state.read_text())["run_id"], str(state))
    raise UsageError(
        f"no run to attach to: run `train` first, or pass --run-id / set MLFLOW_RUN_ID (looked for {state})"
    )


def check_run(client: MlflowClient, ref: RunRef) -> mlflow.entities.Run:
    try:
        return client.get_run(ref.run_id)
    except mlflow.exceptions.MlflowException as error:
        raise UsageError(
            f"run {ref.run_id} (from {ref.source}) is not in the tracking store "
            f"{mlflow.get_tracking_uri()}: {error.message}"
        ) from error
