"""PyTorch: a multilayer perceptron on the preprocessed table, trained with early stopping.

Seeded and deterministic on the CPU (same seed, same metrics); a GPU is used when one is present.
"""

from __future__ import annotations

import copy
import logging
import sys
import tempfile

import mlflow
import numpy as np
import onnx
import pandas as pd
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from ..config import Split
from ..data import Schema
from ..predictions import Predictions
from . import tabular

log = logging.getLogger(__name__)

class Network(nn.Module):
    """Logits from `body` in training; probabilities (classification) or values from `forward`."""

    def __init__(self, inputs: int, outputs: int, hidden: list[int], dropout: float, classification: bool):
        super().__init__()
        layers, width = [], inputs
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        self.body = nn.Sequential(*layers, nn.Linear(width, outputs))
        self.classification = classification

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return torch.softmax(out, dim=1) if self.classification else out


def train(features: pd.DataFrame, target: pd.Series, schema: Schema, params: dict,
          split: Split) -> tabular.TabularModel:
    settings = tabular.settings(params, "pytorch")
    torch.manual_seed(split.seed)
    torch.use_deterministic_algorithms(True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log.info("training on %s", device)
    data = tabular.prepare(features, target, schema, split.validation_size, split.seed)
    classification = schema.task != "regression"
    network = Network(data.x_train.shape[1], len(data.classes) if classification else 1,
                      settings["hidden_units"], settings["dropout"], classification).to(device)
    loss_fn = nn.CrossEntropyLoss() if classification else nn.MSELoss()
    optimiser = torch.optim.Adam(network.parameters(), lr=settings["learning_rate"])
    x_train, y_train = torch.from_numpy(data.x_train).to(device), torch.from_numpy(data.y_train).to(device)
    x_valid, y_valid = torch.from_numpy(data.x_valid).to(device), torch.from_numpy(data.y_valid).to(device)
    order = torch.Generator().manual_seed(split.seed)
    stopping, best_state = tabular.EarlyStopping(settings["patience"]), None

    with tempfile.TemporaryDirectory() as events, SummaryWriter(events) as board:
        epochs = tqdm(range(settings["epochs"]), desc="epochs", unit="epoch", file=sys.stderr,
                      disable=None)  # no bar when stderr is not a terminal (CI logs)
        for epoch in epochs:
            network.train()
            total = 0.0
            for batch in torch.randperm(len(x_train), generator=order).split(settings["batch_size"]):
                optimiser.zero_grad()
                loss = loss_fn(network.body(x_train[batch]), y_train[batch])
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            network.eval()
            with torch.no_grad():
                valid_loss = loss_fn(network.body(x_valid), y_valid).item()
            train_loss = total / len(x_train)
            mlflow.log_metrics({"epoch.train_loss": train_loss, "epoch.valid_loss": valid_loss}, step=epoch)
            board.add_scalars("loss", {"train": train_loss, "valid": valid_loss}, epoch)
            epochs.set_postfix(train_loss=f"{train_loss:.4f}", valid_loss=f"{valid_loss:.4f}")
            if stopping.improved(valid_loss, epoch):
                best_state = copy.deepcopy(network.state_dict())
            elif stopping.stop:
                log.info("early stop at epoch %d: no better validation loss since epoch %d", epoch, stopping.best_epoch)
                break
        board.flush()
        mlflow.log_artifacts(events, "tensorboard")
    network.load_state_dict(best_state)
    mlflow.log_metric("epoch.best", stopping.best_epoch)
    return tabular.TabularModel(data.preprocess, network.cpu().eval(), data.classes)


def _forward(network: Network, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return network(torch.from_numpy(x)).numpy()


def classes(model: tabular.TabularModel) -> list:
    return model.classes


def predict(model: tabular.TabularModel, features: pd.DataFrame) -> Predictions:
    return tabular.predict(model, features, _forward)


def log_model(model: tabular.TabularModel, features: pd.DataFrame, predicted: Predictions) -> str:
    def as_module(network, **options):
        # The whole nn.Module (class from this package), not MLflow's default traced `pt2` program:
        # that one is fixed to the example's batch size and loads as a graph, not a module.
        return mlflow.pytorch.log_model(network, serialization_format="pickle", **options)

    return tabular.log_model(model, features, as_module, _forward)


def load_model(uri: str) -> tabular.TabularModel:
    return tabular.load_model(uri, lambda u: mlflow.pytorch.load_model(u, map_location="cpu").eval())


def to_onnx(model: tabular.TabularModel, schema: Schema) -> onnx.ModelProto:
    width = len(model.preprocess.get_feature_names_out())
    example = (torch.zeros(2, width),)
    with tabular.quiet_exporter():
        exported = torch.onnx.export(model.network, example, input_names=["features"], output_names=["output"],
                                     dynamic_shapes=({0: torch.export.Dim("batch")},),
                                     opset_version=tabular.OPSET, dynamo=True, verbose=False)
    return tabular.to_onnx(model, schema, exported.model_proto)
