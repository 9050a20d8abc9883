"""import-model: a model trained elsewhere is judged, gated and exported like a trained one; one that does not
fit the configured columns is refused with the differences, and nothing is recorded."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import skops.io
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from {{ cookiecutter.package_name }}.serving import contract
from {{ cookiecutter.package_name }}.tabular import config as configuration
from {{ cookiecutter.package_name }}.tabular.dataio import data, onnx_model
from {{ cookiecutter.package_name }}.tabular.frameworks.imported_onnx import ImportedOnnx
from {{ cookiecutter.package_name }}.tabular.stages import train

# Only a project generated with framework=sklearn has the module that reads, logs and converts a pipeline.
SKLEARN = importlib.util.find_spec("{{ cookiecutter.package_name }}.tabular.frameworks.scikit_learn") is not None
STAGES = ("validate", "train", "evaluate", "gate", "export")


def training_rows(space) -> tuple[pd.DataFrame, pd.Series, str]:
    """The rows `train` would fit on, as model inputs: what a team elsewhere could have used."""
    settings = configuration.load(space.config)
    frame = data.read_table(settings.data_path, settings.data.csv)
    schema = data.schema(settings, frame)
    train = data.split(frame, schema, settings.split.test_size, settings.split.seed).train
    return data.features(train, schema), data.target(train, schema), schema.task


def fit_elsewhere(features: pd.DataFrame, target: pd.Series, estimator=None) -> Pipeline:
    numeric = [name for name in features if features[name].dtype.kind == "f"]
    text = [name for name in features if name not in numeric]
    encode = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("text", OneHotEncoder(handle_unknown="ignore"), text),
        ]
    )
    return Pipeline([("encode", encode), ("model", estimator)]).fit(features, target)


def linear(task: str):
    return Ridge() if task == "regression" else LogisticRegression(max_iter=1000)


def as_onnx(pipeline: Pipeline, features: pd.DataFrame, regression: bool) -> bytes:
    inputs = [
        (name, FloatTensorType([None, 1]) if features[name].dtype.kind == "f" else StringTensorType([None, 1]))
        for name in features
    ]
    options = None if regression else {id(pipeline): {"zipmap": False}}
    converted = to_onnx(pipeline, initial_types=inputs, options=options, target_opset=17)
    names = [output.name for output in converted.graph.output]
    if regression and "variable" in names:  # skl2onnx calls it `variable`; the contract says `prediction`
        converted = onnx_model.finish(converted, {"variable": "prediction"})
    return converted.SerializeToString()


def recorded_runs(space) -> list:
    if not (space.root / "mlflow.db").exists():
        return []
    experiments = space.client().search_experiments()
    return space.client().search_runs([e.experiment_id for e in experiments]) if experiments else []


def current_run(space):
    return space.client().get_run(json.loads((space.outputs / "run.json").read_text())["run_id"])


def check_judged_like_a_trained_model(space, run, source, framework: str) -> None:
    tags = run.data.tags
    assert all(tags[f"stage.{stage}"] == "done" for stage in STAGES)
    assert (tags["origin"], tags["import.source"], tags["framework"]) == ("imported", source.name, framework)
    assert tags["import.sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert (tags["gate.verdict"], tags["export.parity"]) == ("passed", "passed")
    assert any(name.startswith("test.") for name in run.data.metrics)
    assert any(name.startswith("fairness.sex.") for name in run.data.metrics)
    artifacts = {item.path for item in space.client().list_artifacts(run.info.run_id)}
    assert {"validation", "plots", "gate", "onnx", "schema.json"} <= artifacts
    # The held-out rows are real data: only their digest and count are logged, never the rows.
    assert "split" not in artifacts and len(run.data.params["split.test.sha256"]) == 64
    assert int(run.data.params["split.test.rows"]) > 0
    exported = onnx.load(space.outputs / "model.onnx")
    metadata = {entry.key: entry.value for entry in exported.metadata_props}
    assert metadata[contract.RUN_ID] == run.info.run_id
    assert metadata[f"{contract.PREFIX}imported_from"].startswith(f"{source.name} sha256:{tags['import.sha256']}")


@pytest.mark.system
def test_an_onnx_model_trained_elsewhere_goes_through_evaluate_gate_export_and_register(workspace, tmp_path):
    features, target, task = training_rows(workspace)
    source = tmp_path / "elsewhere.onnx"
    source.write_bytes(as_onnx(fit_elsewhere(features, target, linear(task)), features, task == "regression"))

    assert workspace.cli("import-model", "--model", str(source), "--name", "from-the-other-team") == 0
    run = current_run(workspace)
    assert run.info.run_name == "from-the-other-team"
    check_judged_like_a_trained_model(workspace, run, source, ImportedOnnx.name)
    # What export parity means for a file that was already ONNX: the stamped file it wrote predicts
    # exactly as the imported one on the held-out rows (only its metadata differs).
    assert run.data.metrics["export.parity_max_abs_diff"] == 0.0
    rows = features.head(500)
    kinds = {node.name: node.type for node in ort.InferenceSession(str(source)).get_inputs()}
    feeds = contract.feeds(
        rows, {name: "number" if kind == "tensor(float)" else "string" for name, kind in kinds.items()}
    )
    imported, shipped = (
        ort.InferenceSession(path).run(None, feeds) for path in (str(source), str(workspace.outputs / "model.onnx"))
    )
    for before, after in zip(imported, shipped, strict=True):
        np.testing.assert_array_equal(before, after)

    settings = configuration.load(workspace.config)
    assert workspace.cli("register") == 0
    version = workspace.client().get_model_version_by_alias(settings.tracking.model_name, "challenger")
    assert version.tags["run_id"] == run.info.run_id
    assert (version.tags["origin"], version.tags["import.source"]) == ("imported", source.name)


@pytest.mark.system
def test_a_skops_pipeline_trained_elsewhere_goes_through_evaluate_gate_and_export(workspace, tmp_path, capsys):
    features, target, task = training_rows(workspace)
    source = tmp_path / "elsewhere.skops"
    skops.io.dump(fit_elsewhere(features, target, linear(task)), source)

    if not SKLEARN:
        assert workspace.cli("import-model", "--model", str(source)) == 2
        refused = capsys.readouterr().err
        assert "framework=sklearn" in refused and "import the .onnx file" in refused
        assert recorded_runs(workspace) == []
        return
    assert workspace.cli("import-model", "--model", str(source)) == 0
    run = current_run(workspace)
    check_judged_like_a_trained_model(workspace, run, source, "sklearn")
    # A real conversion: onnxruntime against scikit-learn, on every held-out row.
    assert (
        0
        <= run.data.metrics["export.parity_max_abs_diff"]
        <= configuration.load(workspace.config).export.parity_tolerance
    )


def test_a_model_that_does_not_fit_the_columns_is_refused_with_the_differences(workspace, tmp_path, capsys):
    features, target, task = training_rows(workspace)
    # Trained on other columns: `age` renamed, `income` as text, and the wrong kind of model for the task.
    other = features.rename(columns={"age": "applicant_age"}).assign(income=features["income"].astype(str))
    wrong_kind = LogisticRegression(max_iter=200) if task == "regression" else Ridge()
    labels = target.astype(int) if task == "regression" else target.astype(float)
    source = tmp_path / "other.onnx"
    source.write_bytes(as_onnx(fit_elsewhere(other, labels, wrong_kind), other, task != "regression"))

    assert workspace.cli("import-model", "--model", str(source)) == 2
    message = capsys.readouterr().err
    assert "nothing was recorded" in message
    assert "missing inputs: age (tensor(float), for column 'age')" in message
    assert "unexpected inputs (no configured column feeds them): applicant_age" in message
    assert "input income is tensor(string), the contract says tensor(float)" in message
    assert f"missing outputs for a {task} model: " in message
    assert recorded_runs(workspace) == [] and not (workspace.outputs / "run.json").exists()

    if SKLEARN:
        pipeline = tmp_path / "other.skops"
        skops.io.dump(fit_elsewhere(other, target, linear(task)), pipeline)
        assert workspace.cli("import-model", "--model", str(pipeline)) == 2
        message = capsys.readouterr().err
        assert "missing inputs (configured, not in its feature_names_in_): age" in message
        assert "unexpected inputs (in its feature_names_in_, not configured): applicant_age" in message

        # A forest holds a type skops does not trust by default and this project does not list: not loaded.
        forest = RandomForestRegressor if task == "regression" else RandomForestClassifier
        untrusted = tmp_path / "forest.skops"
        skops.io.dump(fit_elsewhere(features, target, forest(n_estimators=3, max_depth=3)), untrusted)
        assert workspace.cli("import-model", "--model", str(untrusted)) == 2
        message = capsys.readouterr().err
        assert "holds types this project does not trust: sklearn.tree._tree.Tree" in message
        assert "TRUSTED_TYPES in frameworks/scikit_learn.py" in message
    assert recorded_runs(workspace) == []


def test_a_failure_while_recording_leaves_no_run(workspace, tmp_path, monkeypatch):
    features, target, task = training_rows(workspace)
    source = tmp_path / "elsewhere.onnx"
    source.write_bytes(as_onnx(fit_elsewhere(features, target, linear(task)), features, task == "regression"))

    def broken(rows):
        raise OSError("the artifact store went away")

    # After the model is logged, before the run is complete.
    monkeypatch.setattr(train, "log_test_split", broken)
    with pytest.raises(OSError, match="went away"):
        workspace.cli("import-model", "--model", str(source))
    assert recorded_runs(workspace) == [] and not (workspace.outputs / "run.json").exists()
    experiments = [e.experiment_id for e in workspace.client().search_experiments()]
    assert workspace.client().search_logged_models(experiments) == []
