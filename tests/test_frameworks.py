"""PyTorch and Keras 3 projects through the whole chain to ONNX, on the same data and gates as sklearn."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import PACKAGE, SLUG, cli, run

OTHERS = {"pytorch": ("keras3.py", "scikit_learn.py"), "keras": ("pytorch.py", "scikit_learn.py")}


def store(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def run_id(project) -> str:
    return json.loads((project / "outputs" / "run.json").read_text())["run_id"]


@pytest.mark.parametrize(("framework", "task"), [("pytorch", "binary"), ("keras", "binary"),
                                                 ("pytorch", "regression"), ("keras", "multiclass")])
def test_framework_runs_the_whole_chain(tmp_path, baked, framework, task):
    project = shutil.copytree(baked(framework=framework, task=task), tmp_path / SLUG)
    assert not any((project / "src" / PACKAGE / "frameworks" / name).exists() for name in OTHERS[framework])
    cli(project, "pipeline")

    first = run_id(project)
    metrics = store(project).get_run(first).data.metrics
    assert "epoch.train_loss" in metrics and "epoch.best" in metrics
    artifacts = {a.path for a in store(project).list_artifacts(first)}
    assert "tensorboard" in artifacts

    # The exported file takes the raw columns and matches the native model on held-out rows.
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"))
    test_rows = store(project).download_artifacts(first, "split/test.csv", str(tmp_path))
    rows = pd.read_csv(test_rows)
    features = [i.name for i in session.get_inputs()]
    assert set(features) < set(rows.columns)
    feeds = {i.name: (rows[i.name].to_numpy(np.float32) if i.type == "tensor(float)" else rows[i.name].astype(str)
                      .to_numpy(object)).reshape(-1, 1) for i in session.get_inputs()}
    output = session.run(None, feeds)
    native = run(project, "-c", NATIVE, test_rows).stdout
    expected = np.asarray(json.loads(native))
    exported = output[1] if task != "regression" else output[0].reshape(-1)
    assert np.max(np.abs(exported - expected)) <= 1e-4
    assert metrics["export.parity_max_abs_diff"] <= 1e-4

    if task == "binary":  # the same seed again: the same numbers, to the last digit
        cli(project, "train")
        cli(project, "evaluate")
        again = store(project).get_run(run_id(project)).data.metrics
        assert run_id(project) != first
        assert {k: v for k, v in again.items() if k.startswith(("test.", "fairness."))} == \
            {k: v for k, v in metrics.items() if k.startswith(("test.", "fairness."))}


# Native predictions through the project's own framework module, as the export stage computes them.
NATIVE = """
import json, sys
import pandas as pd
from credit_model import config, data
from credit_model.predictions import ClassPredictions
from credit_model.stages.context import attach
settings = config.load(__import__("pathlib").Path("config.yaml"))
context = attach(settings, None)
model = context.framework.load_model(context.model_uri)
rows = data.features(pd.read_csv(sys.argv[1]), context.schema)
predicted = context.framework.predict(model, rows)
out = predicted.probabilities if isinstance(predicted, ClassPredictions) else predicted.values
print(json.dumps(out.tolist()))
"""
