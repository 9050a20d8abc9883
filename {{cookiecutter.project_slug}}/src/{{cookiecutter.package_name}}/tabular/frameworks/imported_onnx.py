"""An ONNX model trained elsewhere and brought in with `import-model`: predicted with onnxruntime, never trained here.

It must already meet the project's ONNX contract (serving/contract.py): one input per feature, named by
the schema's input names, float32 for numbers and strings otherwise, shape [N, 1]; outputs `label`
and `probabilities` for classification, `prediction` for regression. `contract_differences` says what
differs, before anything is recorded. Its predictions go through the same feeding code as the export's
parity check and the server (contract.feeds, onnx_model.predict), so what evaluate and gate judge is
what the server will answer.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from mlflow.models import infer_signature

from ...errors import UsageError
from ...serving import contract
from ..config import Model as ModelSettings
from ..config import Split
from ..dataio import onnx_model
from ..dataio.data import Schema
from ..pure.predictions import ClassPredictions, Predictions, ValuePredictions
from . import model_files, read_json, reason, untrusted
from .base import Framework

MODEL_FILE = "model.onnx"  # where mlflow.onnx.log_model writes the graph, in the logged model's folder
CLASSES_FILE = "imported/classes.json"


@dataclass
class OnnxModel:
    payload: bytes  # the serialised graph, one file (no external data)
    classes: list  # label order of the probabilities; [] for regression
    session: ort.InferenceSession = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.session = onnx_model.session(self.payload)

    @property
    def task(self) -> str:
        """regression or classification, as its outputs say (the two kinds of contract predict tells apart)."""
        return "regression" if not self.classes else "classification"


def input_kinds(session: ort.InferenceSession) -> dict[str, str]:
    """Input name -> number | string, from the graph's own inputs, in its order."""
    return {
        node.name: contract.NUMBER if node.type == contract.INPUT_TYPES[contract.NUMBER] else "string"
        for node in session.get_inputs()
    }


def parse(payload: bytes, where: str) -> onnx.ModelProto:
    """The graph in `payload`, refused (UsageError naming `where`) when it is not one self-contained ONNX file."""
    try:
        model = onnx.load_model_from_string(payload)
    except Exception as error:  # protobuf's DecodeError and friends: not an ONNX file
        raise UsageError(f"{where}: not an ONNX file ({reason(error)})") from error
    if not model.graph.node:
        raise UsageError(f"{where}: not an ONNX file (no graph nodes)")
    # External data would make onnxruntime read other files, by paths the model names.
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise UsageError(
            f"{where}: keeps {len(external)} tensor(s) in external files ({', '.join(external[:3])}); "
            "save it as one file (onnx.save_model(model, path, save_as_external_data=False)) and import that"
        )
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise UsageError(f"{where}: not a valid ONNX model ({reason(error)})") from error
    return model


def contract_differences(session: ort.InferenceSession, schema: Schema) -> list[str]:
    """What keeps the model's inputs and outputs from the contract for this config's columns (empty: none)."""
    expected = {name: contract.input_type(kind) for name, kind in schema.input_kinds.items()}
    columns = {input_name: column for column, input_name in schema.inputs.items()}
    actual = {node.name: node for node in session.get_inputs()}
    differences = []
    if missing := [name for name in expected if name not in actual]:
        differences.append(
            "missing inputs: "
            + ", ".join(f"{name} ({expected[name]}, for column {columns[name]!r})" for name in missing)
        )
    if unexpected := [name for name in actual if name not in expected]:
        differences.append(f"unexpected inputs (no configured column feeds them): {', '.join(unexpected)}")
    for name in (name for name in expected if name in actual):
        node = actual[name]
        if node.type != expected[name]:
            differences.append(
                f"input {name} is {node.type}, the contract says {expected[name]} for column {columns[name]!r}"
            )
        shape = list(node.shape)
        if len(shape) != 2 or shape[1] not in (1, None) and not isinstance(shape[1], str):
            differences.append(f"input {name} has shape {shape}, the contract says [N, 1]")
    wanted = contract.outputs(schema.task)
    outputs = [node.name for node in session.get_outputs()]
    if missing_outputs := [name for name in wanted if name not in outputs]:
        differences.append(
            f"missing outputs for a {schema.task} model: {', '.join(missing_outputs)} "
            f"(it has {', '.join(outputs) or 'none'}; the contract's are {', '.join(wanted)})"
        )
    return differences


class ImportedOnnx(Framework[OnnxModel]):
    name = "onnx"  # the run's framework tag; not a choice for model.framework in config.yaml

    def train(
        self, features: pd.DataFrame, target: pd.Series, schema: Schema, settings: ModelSettings, split: Split
    ) -> OnnxModel:
        raise UsageError("an imported ONNX model is not trained by this project: use `import-model` to bring it in")

    def classes(self, model: OnnxModel) -> list:
        return model.classes

    def predict(self, model: OnnxModel, features: pd.DataFrame) -> Predictions:
        inputs = contract.feeds(features, input_kinds(model.session))
        predicted = onnx_model.predict(model.session, inputs, model.task)
        if isinstance(predicted, ValuePredictions):
            return ValuePredictions(np.asarray(predicted.values, np.float32))
        return ClassPredictions(np.asarray(predicted.labels).reshape(-1), np.asarray(predicted.probabilities))

    def log_model(self, model: OnnxModel, features: pd.DataFrame, predicted: Predictions) -> str:
        info = mlflow.onnx.log_model(
            onnx.load_model_from_string(model.payload),
            name="model",
            signature=infer_signature(features.head(5), predicted.point[:5]),
            save_as_external_data=False,  # one file: load_model reads exactly that file
            onnx_execution_providers=["CPUExecutionProvider"],
            pip_requirements=mlflow.onnx.get_default_pip_requirements(),
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / CLASSES_FILE
            path.parent.mkdir()
            path.write_text(json.dumps(model.classes))
            mlflow.MlflowClient().log_model_artifacts(info.model_id, folder)
        return info.model_uri

    def load_model(self, uri: str) -> OnnxModel:
        # Not mlflow.onnx.load_model: it takes its settings from MLmodel. ONNX is protobuf: data only.
        folder = model_files(uri)
        try:
            payload = (folder / MODEL_FILE).read_bytes()
        except OSError as error:
            raise untrusted(uri, MODEL_FILE, f"is missing ({error})") from error
        try:
            parse(payload, MODEL_FILE)
        except UsageError as error:
            raise untrusted(uri, MODEL_FILE, str(error).removeprefix(f"{MODEL_FILE}: ")) from error
        return OnnxModel(payload, read_json(uri, folder, CLASSES_FILE, list))

    def to_onnx(self, model: OnnxModel, schema: Schema) -> onnx.ModelProto:
        """The file itself, parsed afresh: export stamps it and checks the stamped copy against `predict`."""
        return onnx.load_model_from_string(model.payload)
