"""Converted models held to the ONNX contract (serving/contract.py): output names, metadata, a parity session."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

from ...serving import contract
from ..pure.predictions import ClassPredictions, Predictions, ValuePredictions
from .data import Schema


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
    del model.metadata_props[:]
    for key, value in contract.metadata(described, info).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    return model


def feeds(frame: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """Each input of `frame` (data.features: columns named by input) as an (N, 1) array of its dtype."""
    return contract.feeds(frame, schema.input_kinds)


def session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    payload = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(payload, providers=["CPUExecutionProvider"])


def predict(runtime: ort.InferenceSession, inputs: dict[str, np.ndarray], task: str) -> Predictions:
    if task == "regression":
        (values,) = runtime.run(list(contract.REGRESSION_OUTPUTS), inputs)
        return ValuePredictions(values.reshape(-1))
    labels, probabilities = runtime.run(list(contract.CLASSIFICATION_OUTPUTS), inputs)
    return ClassPredictions(labels.reshape(-1), probabilities)
