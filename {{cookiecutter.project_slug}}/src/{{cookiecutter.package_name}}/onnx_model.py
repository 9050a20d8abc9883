"""The ONNX contract every framework's export meets, and the only thing serving relies on.

Inputs: one per raw feature column, named as the column, shape [N, 1]; float for numbers, string
for categories. Outputs: `label` [N] and `probabilities` [N, classes] for classification,
`prediction` [N, 1] for regression. Metadata (`mlops.*`) says what the model is and where from.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

from .data import Schema
from .predictions import ClassPredictions, Predictions, ValuePredictions

CLASSIFICATION_OUTPUTS = ("label", "probabilities")
REGRESSION_OUTPUTS = ("prediction",)


def finish(model: onnx.ModelProto, renames: dict[str, str]) -> onnx.ModelProto:
    """Give the graph's outputs the contract's names (converters each pick their own)."""
    graph = model.graph
    for output in graph.output:
        new = renames.get(output.name)
        if new and new != output.name:
            graph.node.append(onnx.helper.make_node("Identity", [output.name], [new]))
            output.name = new
    return model


def stamp(model: onnx.ModelProto, schema: Schema, classes: list, info: dict[str, str]) -> onnx.ModelProto:
    """Write the input schema and lineage into the file, so it describes itself wherever it goes."""
    described = schema.as_dict() | ({"classes": classes} if classes else {})
    entries = {"mlops.schema": json.dumps(described)} | {f"mlops.{key}": value for key, value in info.items()}
    del model.metadata_props[:]
    for key, value in entries.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    onnx.checker.check_model(model)
    return model


def feeds(frame: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """Each column as an (N, 1) array of the dtype its input takes."""
    return {
        name: (frame[name].to_numpy(np.float32) if name in schema.numeric
               else frame[name].astype(str).to_numpy(object)).reshape(-1, 1)
        for name in schema.features
    }


def session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    payload = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(payload, providers=["CPUExecutionProvider"])


def predict(runtime: ort.InferenceSession, inputs: dict[str, np.ndarray], task: str) -> Predictions:
    if task == "regression":
        (values,) = runtime.run(list(REGRESSION_OUTPUTS), inputs)
        return ValuePredictions(values.reshape(-1))
    labels, probabilities = runtime.run(list(CLASSIFICATION_OUTPUTS), inputs)
    return ClassPredictions(labels.reshape(-1), probabilities)
