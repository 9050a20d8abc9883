"""Keras 3 on the PyTorch backend (no TensorFlow): the same network, trained with Keras callbacks."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported anywhere

import keras  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from ..config import Split  # noqa: E402
from ..data import Schema  # noqa: E402
from ..predictions import Predictions  # noqa: E402
from . import tabular  # noqa: E402

log = logging.getLogger(__name__)

class EpochLog(keras.callbacks.Callback):
    """Per-epoch losses to MLflow and to TensorBoard event files (Keras's own callback needs TensorFlow)."""

    def __init__(self, board: SummaryWriter):
        super().__init__()
        self.board = board

    def on_epoch_end(self, epoch, logs=None):
        losses = {"train": logs["loss"], "valid": logs["val_loss"]}
        mlflow.log_metrics({"epoch.train_loss": losses["train"], "epoch.valid_loss": losses["valid"]}, step=epoch)
        self.board.add_scalars("loss", losses, epoch)


def train(features: pd.DataFrame, target: pd.Series, schema: Schema, params: dict,
          split: Split) -> tabular.TabularModel:
    settings = tabular.settings(params, "keras")
    keras.utils.set_random_seed(split.seed)
    torch.use_deterministic_algorithms(True)
    data = tabular.prepare(features, target, schema, split.validation_size, split.seed)
    classification = schema.task != "regression"
    layers = [keras.Input(shape=(data.x_train.shape[1],))]
    for units in settings["hidden_units"]:
        layers += [keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(settings["dropout"])]
    layers.append(keras.layers.Dense(len(data.classes), activation="softmax") if classification
                  else keras.layers.Dense(1))
    network = keras.Sequential(layers)
    network.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"]),
                    loss="sparse_categorical_crossentropy" if classification else "mse")
    stopping = keras.callbacks.EarlyStopping(patience=settings["patience"], restore_best_weights=True)
    with tempfile.TemporaryDirectory() as events, SummaryWriter(events) as board:
        history = network.fit(data.x_train, data.y_train, validation_data=(data.x_valid, data.y_valid),
                              epochs=settings["epochs"], batch_size=settings["batch_size"], shuffle=True,
                              callbacks=[stopping, EpochLog(board)],
                              verbose=1 if sys.stderr.isatty() else 2)  # a bar on a terminal, a line per epoch in CI
        board.flush()
        mlflow.log_artifacts(events, "tensorboard")
    best = int(np.argmin(history.history["val_loss"]))
    mlflow.log_metric("epoch.best", best)
    log.info("trained %d epochs, best validation loss at epoch %d", len(history.history["loss"]), best)
    return tabular.TabularModel(data.preprocess, network, data.classes)


def _forward(network: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(network(x, training=False))


def classes(model: tabular.TabularModel) -> list:
    return model.classes


def predict(model: tabular.TabularModel, features: pd.DataFrame) -> Predictions:
    return tabular.predict(model, features, _forward)


def log_model(model: tabular.TabularModel, features: pd.DataFrame, predicted: Predictions) -> str:
    def without_example(network, input_example, **options):
        # mlflow.keras 3.17 fails to save an input example for a Keras 3 model on the torch backend;
        # the signature still records the input's shape and type.
        return mlflow.keras.log_model(network, **options)

    return tabular.log_model(model, features, without_example, _forward)


def load_model(uri: str) -> tabular.TabularModel:
    return tabular.load_model(uri, mlflow.keras.load_model)


def to_onnx(model: tabular.TabularModel, schema: Schema) -> onnx.ModelProto:
    # Keras 3's own exporter (through torch's exporter on this backend), dynamic batch axis included.
    with tempfile.TemporaryDirectory() as folder, tabular.quiet_exporter():
        path = Path(folder) / "network.onnx"
        model.network.export(str(path), format="onnx", verbose=False)
        network = onnx.load(path)
    return tabular.to_onnx(model, schema, network)
