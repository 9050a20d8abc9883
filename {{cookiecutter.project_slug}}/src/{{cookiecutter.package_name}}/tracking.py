"""Where runs are recorded, and how each stage finds the run that `train` started.

One pipeline execution is one MLflow run. Stages are separate processes (separate CI jobs), so the
run id travels explicitly: --run-id, else $MLFLOW_RUN_ID, else outputs/run.json written by `train`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import mlflow
from mlflow.tracking import MlflowClient

from . import lineage
from .config import Config
from .errors import UsageError


def embedded_uri(config: Config) -> str:
    """The SQLite store inside the project (absolute, so a stage can run from any folder)."""
    return f"sqlite:///{(config.root / 'mlflow.db').resolve()}"


def tracking_uri(config: Config) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or embedded_uri(config)


def connect(config: Config) -> MlflowClient:
    uri = tracking_uri(config)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri)


def reference_client(config: Config) -> MlflowClient:
    """Where the champion is read from: $MLFLOW_REGISTRY_URI when set, else the tracking store.

    Branch and pull-request CI runs track in the embedded store but read the team registry with
    read-only credentials (README, "Trust model"): they compare with the champion and write nothing.
    """
    uri = os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri(config)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(config: Config, client: MlflowClient) -> str:
    name = config.tracking.experiment
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
