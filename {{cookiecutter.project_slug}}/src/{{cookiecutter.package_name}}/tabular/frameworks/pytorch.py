"""PyTorch: a multilayer perceptron on the preprocessed table, trained with early stopping.

Seeded and deterministic on the CPU (same seed, same metrics); a GPU is used when one is present.
The logged model is data only: the weights (a state dict, loaded with `weights_only=True`) and the
network's arguments as JSON; loading rebuilds the network from this module's code.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import onnx
import torch
from mlflow.models import ModelSignature
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from ...errors import CheckFailed
from . import read_json, reason, tabular, untrusted
from .tabular import Board, Prepared, Transfer

if TYPE_CHECKING:
    from ..training import dp_sgd

log = logging.getLogger(__name__)

STATE_DICT = "state_dict.pt"  # the weights: tensors only, read back by torch's weights_only unpickler
ARCHITECTURE = "network.json"  # Network's arguments, plain JSON


class Network(nn.Module):
    """Logits from `body` in training; probabilities (classification) or values from `forward`."""

    def __init__(self, inputs: int, outputs: int, hidden: list[int], dropout: float, classification: bool):
        super().__init__()
        # All it takes to rebuild this network around its weights, logged as ARCHITECTURE.
        self.architecture = {
            "inputs": inputs,
            "outputs": outputs,
            "hidden": list(hidden),
            "dropout": dropout,
            "classification": classification,
        }
        layers, width = [], inputs
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        self.body = nn.Sequential(*layers, nn.Linear(width, outputs))
        self.classification = classification

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return torch.softmax(out, dim=1) if self.classification else out


class PyTorch(tabular.NeuralNetwork):
    name = "pytorch"
    trains_privately = True  # fit runs DP-SGD while train_private sets self.privacy

    def fit(
        self, data: Prepared, settings: dict[str, Any], seed: int, board: Board, start: Transfer | None = None
    ) -> tuple[Network, int]:
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        log.info("training on %s", device)
        outputs = len(data.classes) if data.classification else 1
        network = (
            Network(data.x_train.shape[1], outputs, settings["hidden_units"], settings["dropout"], data.classification)
            if start is None
            else transferred(start, outputs, data.classification)
        ).to(device)
        loss_fn = nn.CrossEntropyLoss() if data.classification else nn.MSELoss()
        optimiser: torch.optim.Optimizer = torch.optim.Adam(
            [p for p in network.parameters() if p.requires_grad], lr=tabular.learning_rate(settings, start)
        )
        x_train, y_train = torch.from_numpy(data.x_train).to(device), torch.from_numpy(data.y_train).to(device)
        x_valid, y_valid = torch.from_numpy(data.x_valid).to(device), torch.from_numpy(data.y_valid).to(device)
        order = torch.Generator().manual_seed(seed)
        stopping, best_state = tabular.EarlyStopping(settings["patience"]), None
        private = self.private(network, optimiser, x_train, y_train, settings, seed)
        layers = private.layers if private else network.body
        optimiser = private.optimiser if private else optimiser

        epochs = tqdm(
            range(settings["epochs"]), desc="epochs", unit="epoch", file=sys.stderr, disable=None
        )  # no bar when stderr is not a terminal (CI logs)
        for epoch in epochs:
            network.train()
            total, seen = 0.0, 0
            batches = private.batches() if private else _shuffled(x_train, y_train, settings["batch_size"], order)
            for x, y in batches:
                optimiser.zero_grad()
                loss = loss_fn(layers(x), y)
                loss.backward()
                optimiser.step()
                total, seen = total + loss.item() * len(x), seen + len(x)
            network.eval()
            with torch.no_grad():
                valid_loss = loss_fn(network.body(x_valid), y_valid).item()
            train_loss = total / max(seen, 1)
            tabular.log_epoch(board, epoch, train_loss, valid_loss)
            epochs.set_postfix(train_loss=f"{train_loss:.4f}", valid_loss=f"{valid_loss:.4f}")
            # DP-SGD keeps its last epoch: picking one by validation loss would make the model depend on
            # the validation rows, which the privacy budget does not cover.
            if private:
                best_state = copy.deepcopy(network.state_dict()) if np.isfinite(valid_loss) else None
            elif stopping.improved(valid_loss, epoch):
                best_state = copy.deepcopy(network.state_dict())
            elif stopping.stop:
                log.info("early stop at epoch %d: no better validation loss since epoch %d", epoch, stopping.best_epoch)
                break
        if best_state is None:  # no epoch ran, or every validation loss was NaN
            raise CheckFailed(
                "training never produced a finite validation loss: check the data for NaN or "
                "infinite values and lower model.params.learning_rate"
            )
        network.load_state_dict(best_state)
        if private:
            private.finish()
            return network.cpu().eval(), epoch
        return network.cpu().eval(), stopping.best_epoch

    def private(
        self,
        network: Network,
        optimiser: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        settings: dict[str, Any],
        seed: int,
    ) -> dp_sgd.PrivateTraining | None:
        """DP-SGD's layers, optimiser and batches (tabular/training/dp_sgd.py) when training privately, else None."""
        if self.privacy is None:
            return None
        from ..training import dp_sgd  # Opacus is imported only when privacy is on

        return dp_sgd.wrap(
            network.body, optimiser, x, y, self.privacy, settings["epochs"], settings["batch_size"], seed
        )

    def forward(self, network: Network, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network(torch.from_numpy(x)).numpy()

    def log_network(
        self, network: Network, name: str, input_example: np.ndarray, signature: ModelSignature
    ) -> mlflow.entities.LoggedModel:
        """A logged model (registrable like any other) holding the weights and ARCHITECTURE, and no code.

        Not mlflow.pytorch.log_model: its `pickle` format is the whole module, pickled (loading it runs
        whatever the file says), and its `pt2` loader unpickles weights with weights_only=False.
        """
        logged = mlflow.initialize_logged_model(name=name, model_type="pytorch-state-dict")
        with tempfile.TemporaryDirectory() as folder:
            torch.save(network.state_dict(), Path(folder) / STATE_DICT)
            (Path(folder) / ARCHITECTURE).write_text(json.dumps(network.architecture))
            # The signature for the UI; no flavour, so no MLflow loader will try to run this model.
            described = mlflow.models.Model(
                signature=signature, run_id=logged.source_run_id, model_id=logged.model_id, model_uuid=logged.model_id
            )
            described.save(Path(folder) / "MLmodel")
            mlflow.MlflowClient().log_model_artifacts(logged.model_id, folder)
        return mlflow.finalize_logged_model(logged.model_id, "READY")

    def load_network(self, uri: str, folder: Path) -> Network:
        network = Network(**_architecture(uri, folder))
        try:
            # weights_only: torch's own unpickler, which builds tensors and plain containers and refuses
            # any other global (a class, os.system) instead of calling it.
            weights = torch.load(folder / STATE_DICT, map_location="cpu", weights_only=True)
            network.load_state_dict(weights)  # strict: every tensor's name and shape must match the architecture
        except Exception as error:  # missing, a refused global, not a torch file, or not this network's weights
            raise untrusted(
                uri, STATE_DICT, f"is not a state dict of plain tensors for {ARCHITECTURE} ({reason(error)})"
            ) from error
        return network.eval()

    def export_network(self, model: tabular.TabularModel) -> onnx.ModelProto:
        width = len(model.preprocess.get_feature_names_out())
        example = (torch.zeros(2, width),)
        exported = torch.onnx.export(
            model.network,
            example,
            input_names=["features"],
            output_names=["output"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=tabular.OPSET,
            dynamo=True,
            verbose=False,
        )
        assert exported is not None  # dynamo=True always returns the program
        return exported.model_proto

    def open_board(self, folder: str) -> SummaryWriter:
        return SummaryWriter(folder)


def transferred(start: tabular.Transfer, outputs: int, classification: bool) -> Network:
    """The base's network for this data (tabular.py's docstring): trunk = every layer of `body` but the
    last, head = the last Linear; a new head is initialised from the seeded generator."""
    base: Network = start.network
    shape: dict[str, Any] = base.architecture  # its arguments, as logged (ARCHITECTURE)
    network = Network(shape["inputs"], outputs, shape["hidden"], shape["dropout"], classification)
    trunk, head = network.body[:-1], network.body[-1]
    trunk.load_state_dict(base.body[:-1].state_dict())
    if start.keep_head:
        head.load_state_dict(base.body[-1].state_dict())
    if start.freeze:
        trunk.requires_grad_(False)
    return network


def _shuffled(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, order: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for batch in torch.randperm(len(x), generator=order).split(batch_size):
        yield x[batch], y[batch]


def _architecture(uri: str, folder: Path) -> dict:
    described = read_json(uri, folder, ARCHITECTURE, dict)

    def count(value: object) -> bool:
        return type(value) is int and value > 0

    if not (
        set(described) == {"inputs", "outputs", "hidden", "dropout", "classification"}
        and count(described["inputs"])
        and count(described["outputs"])
        and type(described["hidden"]) is list
        and all(count(units) for units in described["hidden"])
        and type(described["dropout"]) in (int, float)
        and 0 <= described["dropout"] < 1
        and type(described["classification"]) is bool
    ):
        raise untrusted(
            uri,
            ARCHITECTURE,
            'is not {"inputs": int, "outputs": int, "hidden": [int, ...], '
            f'"dropout": number in [0, 1), "classification": bool}}: {described}',
        )
    return described
