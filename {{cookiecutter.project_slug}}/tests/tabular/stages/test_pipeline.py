"""The whole chain on the bundled data: one MLflow run holds every stage, and the model is served-ready."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shlex
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import onnx
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import UntrustedModel
from {{ cookiecutter.package_name }}.tabular import config as configuration
from {{ cookiecutter.package_name }}.tabular import frameworks
from {{ cookiecutter.package_name }}.tabular.dataio import data, onnx_model
from {{ cookiecutter.package_name }}.tabular.pure.predictions import ClassPredictions
from {{ cookiecutter.package_name }}.tabular.stages import export
from {{ cookiecutter.package_name }}.tabular.stages.context import attach

# Each test here reads or makes a whole pipeline's run: `make test-system`.
pytestmark = pytest.mark.system


def run_state(space) -> str:
    return json.loads((space.outputs / "run.json").read_text())["run_id"]


def test_one_run_holds_every_stage(pipeline_run):
    client = pipeline_run.client()
    run = client.get_run(run_state(pipeline_run))
    for stage in ("validate", "train", "evaluate", "gate", "export", "register"):
        assert run.data.tags[f"stage.{stage}"] == "done"
    assert run.data.tags["gate.verdict"] == "passed"
    assert any(name.startswith("test.") for name in run.data.metrics)
    assert any(name.startswith("fairness.sex.") for name in run.data.metrics)
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"validation", "plots", "gate", "onnx", "schema.json"} <= artifacts
    # The held-out rows are real data: only their digest and count are logged, never the rows.
    assert "split" not in artifacts and len(run.data.params["split.test.sha256"]) == 64
    assert int(run.data.params["split.test.rows"]) > 0
    plots = [item.path for item in client.list_artifacts(run.info.run_id, "plots")]
    assert any(path.endswith(".png") for path in plots)


def test_passing_model_is_registered_as_challenger_with_its_lineage(pipeline_run):
    settings = configuration.load(pipeline_run.config)
    client = pipeline_run.client()
    version = client.get_model_version_by_alias(settings.tracking.model_name, "challenger")
    run = client.get_run(run_state(pipeline_run))
    assert version.tags["run_id"] == run.info.run_id
    # What a release checks: the ref, the commit, both verdicts and the digest of the exported file.
    digest = hashlib.sha256((pipeline_run.outputs / "model.onnx").read_bytes()).hexdigest()
    assert version.tags["onnx.sha256"] == run.data.tags["onnx.sha256"] == digest
    assert (version.tags["gate.verdict"], version.tags["export.parity"]) == ("passed", "passed")
    assert version.tags["source_ref"] == run.data.tags["source_ref"]
    assert version.tags["git_sha"] == run.data.tags["git_sha"]
    registered = json.loads((pipeline_run.outputs / "registered.json").read_text())
    assert registered["model_version"] == str(version.version)
    assert json.loads((pipeline_run.outputs / "gate.json").read_text())["passed"]
    report = (pipeline_run.outputs / "gate.md").read_text()
    assert "PASSED" in report and all(name in report for name in settings.gate.thresholds)


def test_model_card_command_writes_the_card_register_logged(pipeline_run):
    """`model-card` for the run (outputs/run.json) and for the version by alias: the card `register` logged."""
    settings = configuration.load(pipeline_run.config)
    logged = (pipeline_run.outputs / "MODEL_CARD.md").read_text()
    for which in ([], ["--model", f"models:/{settings.tracking.model_name}@challenger"]):
        output = pipeline_run.root / "card" / "MODEL_CARD.md"
        assert pipeline_run.cli("model-card", *which, "--output", str(output)) == 0
        assert output.read_text() == logged, which


def test_onnx_file_reproduces_the_native_model(pipeline_run):
    settings = configuration.load(pipeline_run.config)
    model = onnx.load(pipeline_run.outputs / "model.onnx")
    described = json.loads({entry.key: entry.value for entry in model.metadata_props}["mlops.schema"])
    assert described["task"] == settings.task
    assert [i.name for i in model.graph.input] == [f["input"] for f in described["features"]]

    frame = data.read_table(settings.data_path, settings.data.csv)
    schema = data.schema(settings, frame)
    rows = data.features(frame.sample(200, random_state=1), schema)
    exported = onnx_model.predict(onnx_model.session(model), onnx_model.feeds(rows, schema), schema.task)
    metric = pipeline_run.client().get_run(run_state(pipeline_run)).data.metrics
    assert metric["export.parity_max_abs_diff"] <= settings.export.parity_tolerance
    point = exported.point
    assert len(point) == 200 and np.all(np.isfinite(point.astype(float)))
    if isinstance(exported, ClassPredictions):
        assert np.allclose(exported.probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_sample_data_is_regenerated_byte_identical(tmp_path, pipeline_run):
    from {{ cookiecutter.package_name }}.tabular.dataio.sample_data import write

    settings = configuration.load(pipeline_run.config)
    for path in write(tmp_path, [settings.task]):
        assert path.read_bytes() == settings.data_path.read_bytes()
    assert pd.read_csv(settings.data_path).shape[0] == 5000


class RunsCode:
    """Unpickling this runs a shell command: what someone with write access to the tracking server could plant."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_no_file_of_the_logged_model_can_run_code(tmp_path, pipeline_run):
    # Each file in turn is replaced by a pickle; load_model, as evaluate and export call it, must
    # refuse it (UntrustedModel) or not read it, and never unpickle it.
    context = attach(configuration.load(pipeline_run.config), run_state(pipeline_run))
    location = context.client.get_logged_model(context.model_uri.removeprefix("models:/")).artifact_location
    folder, marker = Path(urlparse(location).path), tmp_path / "code-ran"
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    assert files
    for path in files:
        original = path.read_bytes()
        path.write_bytes(pickle.dumps(RunsCode(marker)))
        try:
            context.framework.load_model(context.model_uri)
        except UntrustedModel as error:
            assert path.relative_to(folder).as_posix() in str(error)
        finally:
            path.write_bytes(original)
        assert not marker.exists(), f"{path.relative_to(folder)}, replaced by a pickle, was unpickled"


def test_the_embedded_store_moves_with_the_project_folder(workspace, tmp_path_factory, monkeypatch):
    """Trained in one folder; judged, exported and registered in another, the first one gone, in a
    new process: what happens when the next CI job's workspace is at another path (act,
    self-hosted runners)."""
    first, elsewhere = workspace, tmp_path_factory.mktemp("elsewhere")
    assert first.cli("train") == 0 and first.cli("evaluate") == 0
    moved = type(first)(Path(shutil.move(first.root, elsewhere / "project")))
    assert not first.root.exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # what mlflow.set_tracking_uri left: a new job starts without it
    # A new process, as a new job is (one for the three stages, to keep the test short).
    stages = (
        f"for stage in ('gate', 'export', 'register'): assert main([stage, '--config', {str(moved.config)!r}]) == 0"
    )
    command = [sys.executable, "-c", f"from {{ cookiecutter.package_name }}.cli import main\n{stages}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert not first.root.exists(), "a stage wrote to the old folder"

    client = moved.client()
    run = client.get_run(run_state(moved))
    assert [run.data.tags[f"stage.{stage}"] for stage in ("gate", "export", "register")] == ["done"] * 3
    onnx_file = Path(client.download_artifacts(run.info.run_id, "onnx/model.onnx", str(elsewhere)))
    assert onnx_file.read_bytes() == (moved.outputs / "model.onnx").read_bytes()
    # What the store records now lies under the new folder, the version's files included.
    model = client.get_logged_model(run.data.tags["model.uri"].removeprefix("models:/"))
    experiment = client.get_experiment(run.info.experiment_id)
    new_root = (moved.root / "mlruns").as_uri()
    for location in (experiment.artifact_location, run.info.artifact_uri, model.artifact_location):
        assert location.startswith(new_root), location
    with closing(sqlite3.connect(moved.root / "mlflow.db")) as db:
        [(stored,)] = db.execute("SELECT storage_location FROM model_versions").fetchall()
    assert stored == model.artifact_location


@pytest.mark.parametrize("text_columns", [["code"], ["code", "kind"]])
def test_text_columns_with_many_categories_export_with_parity(text_columns, workspace):
    """More categories than the encoder may give columns, and a category never seen in training."""
    settings = configuration.load(workspace.config)
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=600),
            "code": rng.choice([f"k{i}" for i in range(40)], 600),
            "kind": rng.choice(["a", "b"], 600),
        }
    )
    frame["y"] = ((frame["x"] > 0) ^ frame["code"].isin(["k1", "k2", "k3"])).astype(int)
    columns = {"x": data.Column(type="number")} | {name: data.Column(type="string") for name in text_columns}
    schema = data.Schema(task="binary", target="y", columns=columns, sensitive=[])
    framework = frameworks.load(settings.model.framework)
    features = data.features(frame, schema)
    mlflow.set_tracking_uri(workspace.tracking_uri)
    with mlflow.start_run():  # the neural networks log their epochs: to a run of this test's own store
        model = framework.train(features, data.target(frame, schema), schema, settings.model, settings.split)
    unseen = features.assign(code=features["code"].where(frame.index % 7 != 0, "never-seen"))
    native = framework.predict(model, unseen)
    exported = onnx_model.predict(
        onnx_model.session(framework.to_onnx(model, schema)), onnx_model.feeds(unseen, schema), schema.task
    )
    assert export.parity(native, exported, settings.export.parity_tolerance)[1] == []


def test_monitor_judges_logged_rows_against_the_run_they_name(pipeline_run, monkeypatch, capsys):
    """`monitor`'s judgement on rows shaped as the prediction log returns them (the database is the
    template's tests'): the held-out rows as logged pass, the same rows with one number doubled drift,
    ten rows are no verdict; the report becomes a run of its own, linked to the training run."""
    from datetime import UTC, datetime, timedelta

    from {{ cookiecutter.package_name }} import lineage, tracking
    from {{ cookiecutter.package_name }}.tabular.commands.monitoring import judge, reference, report, window

    settings = configuration.load(pipeline_run.config)
    run_id = run_state(pipeline_run)
    tracking.connect(settings)
    ref = reference.load(tracking.reference_client(settings), settings, run_id)
    classified = isinstance(ref.predicted, ClassPredictions)

    def logged(inputs: pd.DataFrame) -> pd.DataFrame:
        rows = pd.DataFrame(
            {
                "logged_at": pd.Timestamp.now(tz="UTC"),
                "model_version": "1",
                "run_id": run_id,
                "prediction": ref.predicted.point.tolist(),
                "probabilities": ref.predicted.probabilities.tolist() if classified else None,
                "label": ref.rows[settings.data.target].tolist(),
                "label_source": "feedback:0123456789ab",  # /feedback with a token
            }
        )
        return pd.concat([rows, inputs[ref.schema.features].reset_index(drop=True).add_prefix(window.INPUT)], axis=1)

    now = datetime.now(UTC)
    span = window.Window(now - timedelta(hours=1), now)
    outcome, observed = judge.judge(settings, span, logged(ref.rows))
    assert outcome.status == lineage.PASSED and outcome.reasons == [], outcome.reasons
    assert outcome.rows == outcome.labelled_rows == len(ref.rows) and set(settings.gate.thresholds) <= set(observed)

    column = ref.schema.numeric[0]
    outcome, observed = judge.judge(settings, span, logged(ref.rows.assign(**{column: ref.rows[column] * 2})))
    assert outcome.status == lineage.FAILED and outcome.drifted == [column]
    assert outcome.reasons[0].startswith(f"drift in {column} (PSI ")
    markdown = report.render(outcome)
    assert f"| {column} | number |" in markdown and "**DRIFT**" in markdown
    recorded = pipeline_run.client().get_run(judge.record(settings, outcome, markdown, observed))
    assert recorded.info.run_id != run_id and recorded.data.tags[lineage.MONITOR_OF_RUN] == run_id
    assert recorded.data.tags[lineage.MONITOR_STATUS] == "failed"
    assert recorded.data.metrics[f"drift.{column}.drifted"] == 1.0

    few, _ = judge.judge(settings, span, logged(ref.rows).head(10))
    assert few.status == lineage.TOO_FEW_ROWS and few.rows == 10 and "NO VERDICT" in report.render(few)

    # The drifted window again, but with most labels from no authenticated source: no verdict, not a failure.
    shifted = logged(ref.rows.assign(**{column: ref.rows[column] * 2}))
    shifted.loc[shifted.index % 4 != 0, "label_source"] = None
    untrusted, observed = judge.judge(settings, span, shifted)
    assert untrusted.status == lineage.UNTRUSTED_LABELS and observed == {} and untrusted.drift == []
    assert untrusted.trusted_labelled_rows == (len(shifted) + 3) // 4
    assert untrusted.reasons[0].startswith("not enough trusted labels")
    assert "NO VERDICT (not enough trusted labels)" in report.render(untrusted)

    monkeypatch.delenv("PREDICTION_LOG_URL", raising=False)
    assert pipeline_run.cli("monitor") == 2
    assert "set PREDICTION_LOG_URL" in capsys.readouterr().err
    assert pipeline_run.cli("monitor", "--database-url", "sqlite:///log.db") == 2
    assert "expected a PostgreSQL URL" in capsys.readouterr().err
