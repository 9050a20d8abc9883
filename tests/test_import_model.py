"""A model trained outside the project, brought in with `import-model`, answers from the project's own server.

The generated project's tests (tests/tabular/commands/test_import_model.py there) check the run, its tags, the gate,
parity and register, and every kind of refusal; this one runs the CLI as a user does and ends at
/predict on the real server, whose answer must be the imported model's own.
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request

import numpy as np
import onnxruntime as ort
import pandas as pd
import skops.io
from mlflow.tracking import MlflowClient
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conftest import PACKAGE, SLUG, cli, project_env
from processes import free_port, start, stop, wait_for_http
from test_explain import explained_run

TARGET = "approved"


def table(project) -> tuple[pd.DataFrame, pd.Series]:
    """The bundled binary table as model inputs: float32 numbers, text as str (the ONNX contract's types)."""
    frame = pd.read_csv(project / "data" / "credit_binary.csv")
    target = frame.pop(TARGET)
    for name in frame.columns:
        frame[name] = frame[name].astype(np.float32) if frame[name].dtype.kind in "if" else frame[name].astype(str)
    return frame, target


def fit(features: pd.DataFrame, target: pd.Series) -> Pipeline:
    numeric = [name for name in features if features[name].dtype == np.float32]
    text = [name for name in features if name not in numeric]
    encode = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            ("text", OneHotEncoder(handle_unknown="ignore"), text),
        ]
    )
    return Pipeline([("encode", encode), ("model", LogisticRegression(max_iter=1000))]).fit(features, target)


def served_answer(project, record: dict, log) -> dict:
    """POST one row to `serve` on the exported file, on a free loopback port."""
    port = free_port()
    server = start(
        [sys.executable, "-m", PACKAGE, "serve", "--model", "outputs/model.onnx", "--port", str(port)],
        log,
        env=project_env(project),
        cwd=project,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", process=server, log=log)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"records": [record]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    finally:
        stop(server)


def test_imported_onnx_and_skops_models_are_gated_exported_and_served(tmp_path, baked):
    project = shutil.copytree(baked(), tmp_path / SLUG)
    features, target = table(project)
    record = {
        name: (float(value) if isinstance(value, np.floating) else value) for name, value in features.iloc[7].items()
    }

    # An ONNX file made elsewhere (skl2onnx), following the contract: an input per column, label + probabilities.
    pipeline = fit(features, target)
    inputs = [
        (name, FloatTensorType([None, 1]) if features[name].dtype == np.float32 else StringTensorType([None, 1]))
        for name in features
    ]
    converted = to_onnx(pipeline, initial_types=inputs, options={id(pipeline): {"zipmap": False}}, target_opset=17)
    source = tmp_path / "elsewhere.onnx"
    source.write_bytes(converted.SerializeToString())
    imported = cli(project, "import-model", "--model", str(source))
    assert "passed evaluate, gate and export" in imported.stderr
    onnx_run = json.loads((project / "outputs" / "run.json").read_text())["run_id"]
    feeds = {
        name: np.array([[record[name]]], np.float32 if isinstance(tensor, FloatTensorType) else object)
        for name, tensor in inputs
    }
    label, probabilities = ort.InferenceSession(str(source)).run(["label", "probabilities"], feeds)
    answer = served_answer(project, record, tmp_path / "onnx-server.log")
    assert answer["predictions"] == label.tolist()
    np.testing.assert_allclose(answer["probabilities"], probabilities, rtol=1e-6)

    # A scikit-learn pipeline saved with skops, converted to ONNX by the project's export.
    skops.io.dump(pipeline, tmp_path / "elsewhere.skops")
    cli(project, "import-model", "--model", str(tmp_path / "elsewhere.skops"))
    answer = served_answer(project, record, tmp_path / "skops-server.log")
    assert answer["predictions"] == pipeline.predict(features.iloc[[7]]).tolist()
    np.testing.assert_allclose(answer["probabilities"], pipeline.predict_proba(features.iloc[[7]]), atol=1e-5)
    run_ids = [json.loads((project / "outputs" / "run.json").read_text())["run_id"]]
    # Both explained by `explain` in the import's chain: the ONNX file through onnxruntime (model-agnostic),
    # the skops pipeline exactly from its coefficients (its sparse one-hot matrix made dense).
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    for run_id, method in ((onnx_run, "permutation SHAP"), (run_ids[0], "shap.LinearExplainer")):
        importance, _ = explained_run(client, run_id, tmp_path / run_id)
        assert importance["method"].startswith(method)

    # Trained without one of the configured columns: refused, the difference named, nothing recorded.
    skops.io.dump(fit(features.drop(columns=["age"]), target), tmp_path / "fewer.skops")
    refused = cli(project, "import-model", "--model", str(tmp_path / "fewer.skops"), check=False)
    assert refused.returncode == 2
    assert "missing inputs (configured, not in its feature_names_in_): age" in refused.stderr
    assert [json.loads((project / "outputs" / "run.json").read_text())["run_id"]] == run_ids
