"""Keras 3, whatever the backend: the network, its training with Keras callbacks, its file and its ONNX export.

A project runs Keras on one backend, set by its framework's own module before keras is imported
(keras_torch.py: PyTorch, framework `keras`; keras_tensorflow.py: TensorFlow, framework `tensorflow`);
that module gives only what differs between backends: deterministic kernels and the TensorBoard writer.
Keras's own TensorBoard callback needs TensorFlow, so both backends write through tabular.log_epoch.

The logged model is Keras's native `.keras` zip (JSON config and HDF5 weights), loaded in safe mode:
the same file on either backend. ONNX comes from Keras's own `model.export(format="onnx")`, one call for
both backends (through torch's exporter on torch, tf2onnx on TensorFlow).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import zipfile
from abc import abstractmethod
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

import keras
import mlflow
import numpy as np
import onnx
from mlflow.models import ModelSignature

from . import reason, tabular, untrusted
from .tabular import Board, Prepared, Transfer

log = logging.getLogger(__name__)

KERAS_FILE = "data/model.keras"  # where mlflow.keras.log_model writes the native Keras 3 file


class EpochLog(keras.callbacks.Callback):
    """Per-epoch losses to MLflow and to TensorBoard event files."""

    def __init__(self, board: tabular.Board):
        super().__init__()
        self.board = board

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        tabular.log_epoch(self.board, epoch, logs["loss"], logs["val_loss"])


class Keras(tabular.NeuralNetwork):
    """The Keras frameworks' shared code; a backend's subclass sets `name`, `backend_package`, `deterministic`
    and `open_board`."""

    backend_package: ClassVar[str]  # the distribution that runs this backend (pyproject.toml's dependencies)

    def fit(
        self, data: Prepared, settings: dict[str, Any], seed: int, board: Board, start: Transfer | None = None
    ) -> tuple[keras.Model, int]:
        keras.utils.set_random_seed(seed)
        self.deterministic()
        if start is None:
            layers = [keras.Input(shape=(data.x_train.shape[1],))]
            for units in settings["hidden_units"]:
                layers += [keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(settings["dropout"])]
            network = keras.Sequential([*layers, head(data)])
        else:
            network = transferred(start, data)
        network.compile(
            optimizer=keras.optimizers.Adam(tabular.learning_rate(settings, start)),
            loss="sparse_categorical_crossentropy" if data.classification else "mse",
        )
        stopping = keras.callbacks.EarlyStopping(patience=settings["patience"], restore_best_weights=True)
        history = network.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_valid, data.y_valid),
            epochs=settings["epochs"],
            batch_size=settings["batch_size"],
            shuffle=True,
            callbacks=[stopping, EpochLog(board)],
            verbose=1 if sys.stderr.isatty() else 2,
        )  # a bar on a terminal, a line per epoch in CI
        best = int(np.argmin(history.history["val_loss"]))
        log.info("trained %d epochs, best validation loss at epoch %d", len(history.history["loss"]), best)
        return network, best

    def forward(self, network: keras.Model, x: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(network(x, training=False))

    def log_network(self, network: keras.Model, name: str, input_example: np.ndarray, signature: ModelSignature) -> Any:
        # mlflow.keras 3.17 fails to save an input example for a Keras 3 model on the torch backend;
        # the signature still records the input's shape and type. Not the exported (SavedModel) format:
        # the native .keras file, which load_network reads in safe mode.
        return mlflow.keras.log_model(
            network,
            name=name,
            signature=signature,
            save_exported_model=False,
            # Stated, not inferred: inference loads the model in a subprocess to see what it imports
            # (about 20 s with TensorFlow). Keras and its backend at the installed versions, without a
            # local label such as torch's `+cpu` (PyPI has none: the lock's index choice stays the user's).
            pip_requirements=[
                *mlflow.keras.get_default_pip_requirements(),
                f"{self.backend_package}=={version(self.backend_package).split('+')[0]}",
            ],
        )

    def load_network(self, uri: str, folder: Path) -> keras.Model:
        # Not mlflow.keras.load_model: it takes the file's path and format from MLmodel (its exported
        # format is a TensorFlow SavedModel), and MLmodel is as writable as the model.
        path = folder / KERAS_FILE
        try:
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise untrusted(uri, KERAS_FILE, f"is not a Keras 3 model file ({reason(error)})") from error
        # Keras's own layers only: safe mode has been bypassed before through objects from other modules.
        if foreign := _foreign_modules(config):
            raise untrusted(uri, KERAS_FILE, f"builds objects from outside Keras: {', '.join(sorted(foreign))}")
        try:
            # safe_mode refuses a Lambda layer's Python bytecode instead of running it; compile=False:
            # evaluate and export need no optimizer.
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as error:
            raise untrusted(uri, KERAS_FILE, f"was refused by Keras in safe mode ({reason(error)})") from error

    def export_network(self, model: tabular.TabularModel) -> onnx.ModelProto:
        # Keras 3's own exporter, dynamic batch axis included: on TensorFlow it calls tf2onnx itself, so
        # one call serves both backends (tf2onnx.convert.from_keras matched it to 6e-8, with more code).
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "network.onnx"
            model.network.export(str(path), format="onnx", verbose=False)
            return onnx.load(path)

    # What each backend does its own way (and tabular.NeuralNetwork.open_board).

    @abstractmethod
    def deterministic(self) -> None:
        """Make the backend's kernels deterministic, so that the same seed gives the same network."""


def head(data: tabular.Prepared) -> keras.layers.Dense:
    """The output layer: class probabilities, or the value."""
    return keras.layers.Dense(len(data.classes), activation="softmax") if data.classification else keras.layers.Dense(1)


def transferred(start: tabular.Transfer, data: tabular.Prepared) -> keras.Model:
    """The base's network for this data (tabular.py's docstring): the trunk is every layer but the last,
    the head the last Dense. Its layers are reused, weights included (the base is not used again)."""
    base: keras.Model = start.network
    *trunk, base_head = base.layers
    for layer in trunk:
        layer.trainable = not start.freeze
    return keras.Sequential(
        [keras.Input(shape=(data.x_train.shape[1],)), *trunk, base_head if start.keep_head else head(data)]
    )


def _foreign_modules(config: object) -> set[str]:
    """The `module` of every object in a Keras config that is not Keras's own."""
    if isinstance(config, list):
        return set().union(*map(_foreign_modules, config))
    if not isinstance(config, dict):
        return set()
    module = config.get("module")
    own = set() if not isinstance(module, str) or module.split(".")[0] == "keras" else {module}
    return own.union(*map(_foreign_modules, config.values()))
