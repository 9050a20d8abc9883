"""Where runs are recorded, and how each stage finds the run that `train` started.

One pipeline execution is one MLflow run. Stages are separate processes (separate CI jobs), so the
run id travels explicitly: --run-id, else $MLFLOW_RUN_ID, else outputs/run.json written by `train`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
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


def create_embedded_store(database: Path) -> None:
    """An empty MLflow store at `database`, made as MLflow makes it, without a disk sync per migration.

    MLflow creates a SQLite store by running its schema migrations (about a hundred), each committed
    and synced to disk: over a thousand syncs, seconds on a laptop's or a CI runner's disk before the
    first run is recorded. Here they run in a file of their own beside `database` with SQLite's syncs
    off (nothing else opens that file, and a crash leaves only it behind), which is synced once and
    then linked into place, so `database` is either absent or complete. Schema and contents are what
    MLflow itself writes: its own code runs the migrations and creates the default experiment.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    handle, name = tempfile.mkstemp(prefix=f".{database.name}.", suffix=".partial", dir=database.parent)
    os.close(handle)
    partial = Path(name)

    def unsynced(connection: sqlite3.Connection, _record: object) -> None:
        # MLflow makes the engine itself, so the listener is on every engine: only this file is touched.
        files = [row[2] for row in connection.execute("PRAGMA database_list")]
        if files and files[0] and Path(files[0]).resolve() == partial.resolve():
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("PRAGMA journal_mode=MEMORY")

    # No pooled connection outlives the creation: the file can be moved (and removed) at once.
    pool = os.environ.get("MLFLOW_SQLALCHEMYSTORE_POOLCLASS")
    os.environ["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = "NullPool"
    event.listen(Engine, "connect", unsynced)
    try:
        MlflowClient(tracking_uri=f"sqlite:///{partial}").search_experiments(max_results=1)
        with partial.open("rb+") as file:
            os.fsync(file.fileno())
        try:
            os.link(partial, database)  # never over a store another process made meanwhile
        except FileExistsError:
            log.info("%s was created by another process meanwhile: using it", database)
        except OSError:  # a file system without hard links
            if not database.exists():
                os.replace(partial, database)
    finally:
        event.remove(Engine, "connect", unsynced)
        if pool is None:
            os.environ.pop("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", None)
        else:
            os.environ["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = pool
        partial.unlink(missing_ok=True)


# Embedded stores another process is creating (start_creating_store), which `connect` waits for.
_being_created: dict[Path, BaseProcess] = {}


def start_creating_store(config: Config) -> None:
    """Create a missing embedded store in another process, while this one goes on with other work.

    Creating it (MLflow's migrations, create_embedded_store) takes one to two seconds of CPU, which
    the pipeline would otherwise spend waiting before train records its first run; `validate` runs
    meanwhile, on the other core. `connect` waits for it. A spawned process, not a forked one: forking
    a process that has loaded threaded libraries is unsafe, and macOS spawns anyway.
    """
    database = config.root / "mlflow.db"
    if tracking_uri(config) != embedded_uri(config) or database.exists() or database in _being_created:
        return
    process = multiprocessing.get_context("spawn").Process(
        target=create_embedded_store, args=(database,), name=f"create {database.name}"
    )
    try:
        process.start()
    except OSError as error:  # no process to spare: `connect` creates it here, as without this
        log.debug("could not start creating %s in another process: %s", database, error)
        return
    _being_created[database] = process


def connect(config: Config) -> MlflowClient:
    uri = tracking_uri(config)
    managed_tracking.check(uri)
    if uri == embedded_uri(config):
        database = config.root / "mlflow.db"
        if (creating := _being_created.pop(database, None)) is not None:
            creating.join()  # when it failed, the store is still missing and is created below, its error shown here
        if not database.exists():
            log.info("creating the tracking store %s", database)
            create_embedded_store(database)
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
