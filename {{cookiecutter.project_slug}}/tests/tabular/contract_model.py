"""A small real ONNX model that follows the project's ONNX contract, built without MLflow.

The serving tests use it so they do not depend on the training stages (and run in seconds): a
scikit-learn pipeline on the bundled data, converted with skl2onnx, with the contract's input and
output names and `mlops.*` metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from {{ cookiecutter.package_name }}.serving import contract

TARGETS = {"binary": "approved", "multiclass": "risk_grade", "regression": "interest_rate"}
DATA = Path(__file__).resolve().parents[2] / "data"


def load_rows(task: str, rows: int = 400) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(DATA / f"credit_{task}.csv").head(rows)
    target = frame.pop(TARGETS[task])
    for name in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[name]):
            frame[name] = frame[name].astype(np.float32)
        else:
            frame[name] = frame[name].astype(str)
    return frame, target


def build(path: Path, task: str, unseen_categories: str = "ignore") -> Path:
    """Write a contract-following model to `path`. unseen_categories="error" makes the encoder
    refuse values it was not trained on (the server must then reject them itself)."""
    features, target = load_rows(task)
    numeric = [c for c in features.columns if features[c].dtype == np.float32]
    categorical = [c for c in features.columns if c not in numeric]
    encode = ColumnTransformer(
        [
            # The contract says a NaN is a missing value for the model to impute.
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown=unseen_categories), categorical),
        ]
    )
    estimator = Ridge() if task == "regression" else LogisticRegression(max_iter=1000)
    pipeline = Pipeline([("encode", encode), ("model", estimator)]).fit(features, target)

    inputs = [
        (c, FloatTensorType([None, 1]) if c in numeric else StringTensorType([None, 1])) for c in features.columns
    ]
    options = None if task == "regression" else {id(estimator): {"zipmap": False}}
    model = to_onnx(pipeline, initial_types=inputs, options=options, target_opset=17)
    if task == "regression":  # skl2onnx calls it `variable`; the contract says `prediction`
        model.graph.node.append(onnx.helper.make_node("Identity", ["variable"], ["prediction"]))
        model.graph.output[0].name = "prediction"
    schema = {
        "task": task,
        "target": TARGETS[task],
        "features": [
            {"name": c, "type": "number"}
            if c in numeric
            else {"name": c, "type": "string", "categories": sorted(features[c].unique().tolist())}
            for c in features.columns
        ],
    }
    if task != "regression":
        schema["classes"] = [int(c) for c in pipeline.classes_]
    metadata = contract.metadata(
        schema, {"model_name": "{{ cookiecutter.project_slug }}", "model_version": "7", "run_id": "0123456789abcdef", "git_sha": "abc1234"}
    )
    for key, value in metadata.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def sample_records(task: str, rows: int = 5) -> list[dict]:
    """Rows as a client sends them: JSON numbers and strings."""
    features, _ = load_rows(task, rows)
    return [
        {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()}
        for row in features.to_dict(orient="records")
    ]


def direct(path: Path, records: list[dict]) -> dict[str, np.ndarray]:
    """onnxruntime run directly on the same rows: what the server must return."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    schema = json.loads(session.get_modelmeta().custom_metadata_map[contract.SCHEMA])
    feeds = contract.feeds_from_records(records, schema)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))
