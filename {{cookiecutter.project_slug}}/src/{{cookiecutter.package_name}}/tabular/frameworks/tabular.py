"""The neural-network frameworks' base class: preprocessing, early stopping, predict, logging and ONNX.

A subclass (pytorch.py, keras3.py) provides only what differs: fit, forward, log_network,
load_network, export_network and open_board.

Transfer learning (model.init_from, ../tabular/training/transfer.py): the new network is the base's, on the base's
fitted preprocessing (so each input unit means what it meant to the base). Its trunk is every
hidden layer; its head is the output layer. The head is kept when the base predicted the same
classes (or both predict a value), else it is a new layer for this data's classes. With
model.params.freeze the trunk is frozen and only the head trains, at learning_rate; without, the
whole network is fine-tuned at learning_rate x fine_tune_lr_factor, so that the first steps do
not undo what the base learned.

The network sees standardised numbers and one-hot categories, made by a fitted scikit-learn
ColumnTransformer. In ONNX, that transformer (converted by skl2onnx) is chained in front of the
network's own graph, so the exported file takes the same raw columns as every other framework's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import mlflow
import numpy as np
import onnx
import pandas as pd
import skops.io
from mlflow.models import ModelSignature, infer_signature
from onnx import TensorProto, compose, helper
from skl2onnx import to_onnx as skl_to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ...errors import UsageError
from ..config import Model as ModelSettings
from ..config import Split
from ..dataio.data import Schema
from ..dataio.onnx_model import finish
from ..pure.predictions import ClassPredictions, Predictions, ValuePredictions
from ..training.transfer import Base, check_inputs
from . import model_files, read_json, read_skops
from .base import Framework

log = logging.getLogger(__name__)

OPSET = 18
EXTRAS = "tabular"  # folder inside the logged model holding the preprocessing and the classes
TRUSTED_TYPES = ["numpy.dtype"]  # beyond skops' defaults, all a fitted ColumnTransformer of ours holds


# config.yaml's model.params and tune.space for every network framework, used when config.yaml leaves them
# out; the generated config.yaml shows them. Plain literals: the project generator reads them without
# importing this module (frameworks.declared). A key model.params leaves out keeps its value here.
PARAMS = {
    "hidden_units": [64, 32],
    "dropout": 0.1,
    "epochs": 25,
    "batch_size": 256,
    "learning_rate": 0.003,
    "patience": 5,
    # Used only when training starts from a base model (model.init_from); see this module's docstring.
    "freeze": False,
    "fine_tune_lr_factor": 0.1,
}
TUNE_SPACE = {
    "learning_rate": {"type": "loguniform", "low": 0.0005, "high": 0.01},
    "dropout": {"type": "uniform", "low": 0.0, "high": 0.3},
    "hidden_units": {"type": "choice", "values": [[64, 32], [128, 64]]},
}


class Board(Protocol):
    """A TensorBoard event-file writer: torch's SummaryWriter, or keras_tensorflow.py's (no torch there)."""

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict[str, float], global_step: int, /) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class TabularModel:
    preprocess: ColumnTransformer
    network: Any  # a torch.nn.Module or a keras.Model, returning probabilities or values
    classes: list = field(default_factory=list)  # empty for regression

    @property
    def classification(self) -> bool:
        return bool(self.classes)


@dataclass(frozen=True)
class Transfer:
    """Where a network starts when it is trained from a base model."""

    network: Any  # the base's network, as load_network returned it
    keep_head: bool  # the base's output layer fits this data's outputs: start from it too
    freeze: bool  # train the head only


@dataclass(frozen=True)
class Prepared:
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    preprocess: ColumnTransformer
    classes: list

    @property
    def classification(self) -> bool:
        return bool(self.classes)


def prepare(
    features: pd.DataFrame,
    target: pd.Series,
    schema: Schema,
    validation_size: float,
    seed: int,
    fitted: ColumnTransformer | None = None,
) -> Prepared:
    """Fit the preprocessing on the training rows and carve out the early-stopping rows.

    `fitted`: a base model's preprocessing (transfer learning), used as it is.
    """
    preprocess = (
        fitted
        if fitted is not None
        else ColumnTransformer(
            [
                ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), schema.numeric_inputs),
                ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), schema.categorical_inputs),
            ]
        )
    )
    if schema.task == "regression":
        classes, y = [], target.to_numpy(np.float32).reshape(-1, 1)
    else:
        classes = sorted(target.unique().tolist())
        y = target.map({label: index for index, label in enumerate(classes)}).to_numpy(np.int64)
    stratify = None if schema.task == "regression" else y
    f_train, f_valid, y_train, y_valid = train_test_split(
        features, y, test_size=validation_size, random_state=seed, stratify=stratify
    )
    if fitted is None:
        preprocess.fit(f_train)
    return Prepared(
        transform(preprocess, f_train), y_train, transform(preprocess, f_valid), y_valid, preprocess, classes
    )


def transform(preprocess: ColumnTransformer, features: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(preprocess.transform(features), dtype=np.float32)


class EarlyStopping:
    """Stop after `patience` epochs without a better validation loss; remember the best epoch."""

    def __init__(self, patience: int):
        self.patience, self.best, self.best_epoch, self.waited = patience, float("inf"), -1, 0

    def improved(self, loss: float, epoch: int) -> bool:
        if loss < self.best - 1e-6:
            self.best, self.best_epoch, self.waited = loss, epoch, 0
            return True
        self.waited += 1
        return False

    @property
    def stop(self) -> bool:
        return self.waited >= self.patience


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The exporters log every graph pass and warn about optional packages: keep the stage's log readable."""
    names = ("onnxscript", "torch.onnx", "torch.export", "torch._dynamo", "tf2onnx")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def with_preprocessing(model: TabularModel, schema: Schema, network: onnx.ModelProto) -> onnx.ModelProto:
    """skl2onnx's preprocessing graph -> the network's graph -> the contract's named outputs."""
    inputs = [
        (name, FloatTensorType([None, 1]) if kind == "number" else StringTensorType([None, 1]))
        for name, kind in schema.input_kinds.items()
    ]
    # Both graphs must import the same opset to be merged: follow the network's exporter. tf2onnx also
    # imports ai.onnx.ml (at another version than skl2onnx's) without using it: drop what no node uses.
    opset = next(o.version for o in network.opset_import if o.domain in ("", "ai.onnx"))
    used = {node.domain for node in network.graph.node} | {"", "ai.onnx"}
    kept = [o for o in network.opset_import if o.domain in used]
    del network.opset_import[:]
    network.opset_import.extend(kept)
    preprocess = skl_to_onnx(model.preprocess, initial_types=inputs, target_opset={"": opset, "ai.onnx.ml": 3})
    (prepared,) = [o.name for o in preprocess.graph.output]
    (net_input,) = [i.name for i in network.graph.input]
    (net_output,) = [o.name for o in network.graph.output]
    network = compose.add_prefix(network, "net_")
    preprocess.ir_version = network.ir_version = max(preprocess.ir_version, network.ir_version)
    merged = compose.merge_models(preprocess, network, io_map=[(prepared, f"net_{net_input}")])
    if not model.classification:
        return finish(merged, {f"net_{net_output}": "prediction"})
    graph = merged.graph
    # label = classes[argmax(probabilities)], with the classes stored in the graph.
    class_values = np.asarray(model.classes)
    if class_values.dtype.kind in "OUS":
        constant = helper.make_tensor(
            "class_values",
            TensorProto.STRING,
            [len(class_values)],
            [str(c).encode() for c in class_values],  # type: ignore[misc]  # onnx's stubs omit bytes for STRING
        )
    else:
        constant = helper.make_tensor(
            "class_values", TensorProto.INT64, [len(class_values)], class_values.astype(np.int64)
        )
    graph.initializer.append(constant)
    graph.node.extend(
        [
            helper.make_node("ArgMax", [f"net_{net_output}"], ["class_index"], axis=1, keepdims=0),
            helper.make_node("Gather", ["class_values", "class_index"], ["label"], axis=0),
            helper.make_node("Identity", [f"net_{net_output}"], ["probabilities"]),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("label", constant.data_type, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(class_values)]),
        ]
    )
    return merged


def learning_rate(settings: dict[str, Any], start: Transfer | None) -> float:
    """A fine-tuned base learns slower (fine_tune_lr_factor); a new network, or a head alone, at learning_rate."""
    if start is None or start.freeze:
        return float(settings["learning_rate"])
    return float(settings["learning_rate"]) * float(settings["fine_tune_lr_factor"])


def log_epoch(board: Board, epoch: int, train_loss: float, valid_loss: float) -> None:
    """One epoch's losses to MLflow (`epoch.*`) and to the TensorBoard event files logged with the run."""
    mlflow.log_metrics({"epoch.train_loss": train_loss, "epoch.valid_loss": valid_loss}, step=epoch)
    board.add_scalars("loss", {"train": train_loss, "valid": valid_loss}, epoch)


class NeuralNetwork(Framework[TabularModel]):
    """A network on the preprocessed table; a subclass gives the five abstract methods at the end."""

    def train(
        self, features: pd.DataFrame, target: pd.Series, schema: Schema, settings: ModelSettings, split: Split
    ) -> TabularModel:
        chosen = self.settings(settings.params)
        data = prepare(features, target, schema, split.validation_size, split.seed)
        return self.fit_logged(data, chosen, split.seed, None)

    def train_from(
        self,
        base: Base,
        model: TabularModel,
        features: pd.DataFrame,
        target: pd.Series,
        schema: Schema,
        settings: ModelSettings,
        split: Split,
    ) -> TabularModel:
        """The base's network, on the base's preprocessing, trained on this data (this module's docstring)."""
        check_inputs(base, model.preprocess, schema)
        chosen = self.settings(settings.params)
        data = prepare(features, target, schema, split.validation_size, split.seed, fitted=model.preprocess)
        same_outputs = model.classes == data.classes  # both [] for values
        log.info(
            "transfer from %s: %s, %s head",
            base.reference,
            "trunk frozen" if chosen["freeze"] else f"fine-tuning all at x{chosen['fine_tune_lr_factor']} the rate",
            "the base's" if same_outputs else "a new",
        )
        return self.fit_logged(data, chosen, split.seed, Transfer(model.network, same_outputs, bool(chosen["freeze"])))

    def fit_logged(self, data: Prepared, chosen: dict[str, Any], seed: int, start: Transfer | None) -> TabularModel:
        with tempfile.TemporaryDirectory() as events:
            with contextlib.closing(self.open_board(events)) as board:
                network, best_epoch = self.fit(data, chosen, seed, board, start)
                board.flush()
            mlflow.log_artifacts(events, "tensorboard")
        mlflow.log_metric("epoch.best", best_epoch)
        return TabularModel(data.preprocess, network, data.classes)

    def settings(self, params: dict[str, Any]) -> dict[str, Any]:
        """config.yaml's model.params over the defaults; a misspelt key is an error, not ignored."""
        unknown = set(params) - set(PARAMS)
        if unknown:
            raise UsageError(
                f"model.params: unknown for {self.name}: {', '.join(sorted(unknown))} (known: {', '.join(PARAMS)})"
            )
        return PARAMS | params

    def classes(self, model: TabularModel) -> list:
        return model.classes

    def predict(self, model: TabularModel, features: pd.DataFrame) -> Predictions:
        output = self.forward(model.network, transform(model.preprocess, features))
        if not model.classification:
            return ValuePredictions(output.reshape(-1).astype(np.float32))
        classes = np.asarray(model.classes)
        return ClassPredictions(classes[output.argmax(axis=1)], output)

    def log_model(self, model: TabularModel, features: pd.DataFrame, predicted: Predictions) -> str:
        """The network as a logged model; the preprocessing and classes inside the same logged model."""
        example = transform(model.preprocess, features.head(5))
        info = self.log_network(
            model.network, "model", example, infer_signature(example, self.forward(model.network, example))
        )
        with tempfile.TemporaryDirectory() as folder:
            extras = Path(folder) / EXTRAS
            extras.mkdir()
            # skops, not pickle: a zip of JSON and plain arrays, read back with the trusted types below.
            skops.io.dump(model.preprocess, extras / "preprocess.skops")
            (extras / "classes.json").write_text(json.dumps(model.classes))
            mlflow.MlflowClient().log_model_artifacts(info.model_id, folder)
        return info.model_uri

    def load_model(self, uri: str) -> TabularModel:
        folder = model_files(uri)
        preprocess = read_skops(uri, folder, f"{EXTRAS}/preprocess.skops", TRUSTED_TYPES, ColumnTransformer)
        classes = read_json(uri, folder, f"{EXTRAS}/classes.json", list)
        return TabularModel(preprocess, self.load_network(uri, folder), classes)

    def to_onnx(self, model: TabularModel, schema: Schema) -> onnx.ModelProto:
        with quiet_exporter():
            network = self.export_network(model)
        return with_preprocessing(model, schema, network)

    # What each framework does its own way.

    @abstractmethod
    def fit(
        self, data: Prepared, settings: dict[str, Any], seed: int, board: Board, start: Transfer | None
    ) -> tuple[Any, int]:
        """A network trained on `data` with early stopping on its validation rows, and its best epoch.

        Seeded with `seed`; each epoch's losses go through log_epoch(board, ...). `start`: begin from a
        base's network (this module's docstring), at learning_rate(settings, start).
        """

    @abstractmethod
    def forward(self, network: Any, x: np.ndarray) -> np.ndarray:
        """Probabilities (classification) or values for the preprocessed rows `x`."""

    @abstractmethod
    def log_network(self, network: Any, name: str, input_example: np.ndarray, signature: ModelSignature) -> Any:
        """The network logged as the run's model `name`: anything with `model_id` and `model_uri`."""

    @abstractmethod
    def load_network(self, uri: str, folder: Path) -> Any:
        """The network from the logged model's files in `folder`, without running code from them."""

    @abstractmethod
    def export_network(self, model: TabularModel) -> onnx.ModelProto:
        """The network alone as ONNX: one float input (rows, features), one output, dynamic batch axis."""

    @abstractmethod
    def open_board(self, folder: str) -> Board:
        """A writer of TensorBoard event files into `folder` (logged with the run as `tensorboard/`)."""
