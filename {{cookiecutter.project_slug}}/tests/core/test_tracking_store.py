"""The embedded store tracking.py creates: MLflow's own schema and contents, made without a sync per migration."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from mlflow.tracking import MlflowClient

from {{ cookiecutter.package_name }} import config as configuration
from {{ cookiecutter.package_name }} import tracking


def contents(database: Path) -> tuple[list, list, list]:
    with closing(sqlite3.connect(database)) as db:
        # Line by line: the order of a table's CHECK constraints varies from one migration run to the next.
        schema = sorted(
            sorted(row[0].splitlines()) for row in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
        )
        revision = db.execute("SELECT version_num FROM alembic_version").fetchall()
        experiments = db.execute("SELECT experiment_id, name, lifecycle_stage FROM experiments").fetchall()
    return schema, revision, experiments


def test_a_new_store_is_the_one_mlflow_makes_and_nothing_else_is_left(tmp_path, empty_store):
    ours = tmp_path / "mlflow.db"
    tracking.create_embedded_store(ours)
    # The conftest's empty store is MLflow's own: its client ran the migrations, a sync each.
    assert contents(ours) == contents(empty_store)
    assert [path.name for path in ours.parent.iterdir()] == ["mlflow.db"]  # no side file left behind
    with closing(sqlite3.connect(ours)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # SQLite's default, as MLflow leaves it
    client = MlflowClient(f"sqlite:///{ours}")
    run = client.create_run(client.create_experiment("x"))
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_a_store_another_process_made_meanwhile_is_kept(tmp_path, empty_store):
    database = tmp_path / "mlflow.db"
    shutil.copy(empty_store, database)  # the other process's store, made by MLflow itself
    client = MlflowClient(f"sqlite:///{database}")
    kept = client.create_experiment("made first")
    tracking.create_embedded_store(database)  # as a second process would, having seen no store
    assert client.get_experiment(kept).name == "made first"
    assert [path.name for path in tmp_path.iterdir()] == ["mlflow.db"]


def test_the_pipeline_store_made_in_another_process_is_waited_for_and_is_the_same(new_workspace, tmp_path):
    workspace = new_workspace
    config = configuration.load(workspace.config)
    database = workspace.root / "mlflow.db"
    tracking.start_creating_store(config)
    creating = tracking._being_created[database]
    assert creating.pid != os.getpid()
    client = tracking.connect(config)  # waits for that process instead of making a second store
    assert creating.exitcode == 0 and database not in tracking._being_created
    (tmp_path / "ours").mkdir()
    tracking.create_embedded_store(tmp_path / "ours" / "mlflow.db")
    assert contents(database) == contents(tmp_path / "ours" / "mlflow.db")
    assert [path.name for path in workspace.root.iterdir() if path.name.startswith(".mlflow.db")] == []
    client.create_experiment("recorded after the wait")
    tracking.start_creating_store(config)  # the store exists: nothing is started
    assert database not in tracking._being_created
