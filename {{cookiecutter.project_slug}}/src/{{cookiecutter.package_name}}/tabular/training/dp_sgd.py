"""Differentially private training (DP-SGD, Opacus) for the PyTorch network: config.yaml's `privacy` section.

DP-SGD clips each row's gradient to `max_grad_norm` and adds Gaussian noise to every batch's sum, with
batches drawn by Poisson sampling; Opacus picks the noise so that the whole training, `epochs` passes,
spends at most `target_epsilon` at `target_delta`. The guarantee covers the rows DP-SGD trained on.

Only the layers are wrapped, never the network class: what is logged and exported afterwards is the
plain network (pytorch.Network), whose weights the wrapper trained in place.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import torch
from opacus import PrivacyEngine
from opacus.validators import ModuleValidator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ... import lineage
from ...errors import UsageError
from ..config import Privacy

log = logging.getLogger(__name__)

ACCOUNTANT = "rdp"  # Renyi DP: an upper bound on the epsilon spent, the accountant the DP-SGD papers use


@dataclass
class PrivateTraining:
    """The wrapped layers, optimiser and Poisson-sampled batches that replace the plain ones in the loop."""

    layers: nn.Module  # Opacus' GradSampleModule around the network's layers: call it for the logits
    optimiser: torch.optim.Optimizer
    loader: DataLoader
    engine: PrivacyEngine
    delta: float

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            if len(x):  # Poisson sampling can draw an empty batch: no step, the accountant counts it anyway
                yield x, y

    def spent(self) -> float:
        return float(self.engine.get_epsilon(self.delta))

    def finish(self) -> float:
        """Unhook the layers (the network is plain again) and log the budget spent; returns epsilon."""
        self.layers.to_standard_module()  # type: ignore[operator]  # GradSampleModule's, not nn.Module's
        epsilon = self.spent()
        mlflow.log_metrics({lineage.PRIVACY_EPSILON: epsilon, lineage.PRIVACY_DELTA: self.delta})
        log.info("DP-SGD spent epsilon %.3f at delta %g", epsilon, self.delta)
        return epsilon


def wrap(
    layers: nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    privacy: Privacy,
    epochs: int,
    batch_size: int,
    seed: int,
) -> PrivateTraining:
    """`layers` (trained in place) with the optimiser and rows made private for `epochs` passes."""
    problems = ModuleValidator.validate(layers, strict=False)
    if problems:  # e.g. BatchNorm mixes rows in a batch, so one row's gradient cannot be clipped alone
        raise UsageError(
            "privacy.enabled: DP-SGD cannot train this network: "
            + "; ".join(str(problem) for problem in problems)
            + ". Use layers Opacus supports (Linear, Dropout, Embedding, LayerNorm, GroupNorm) or turn privacy off"
        )
    if privacy.target_delta >= 1 / len(x):
        raise UsageError(
            f"privacy.target_delta: {privacy.target_delta:g} is not below 1/{len(x)} (one over the training rows); "
            "a delta that large allows publishing a row outright. Use a delta well below 1/rows, e.g. "
            f"{10 ** -(len(str(len(x))) + 1):g}"
        )
    # Seeded like the rest of training: same config, same noise, same model. Not a secure generator
    # (the README says when to use Opacus' secure_mode instead).
    rows = DataLoader(TensorDataset(x, y), batch_size=batch_size, generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():
        # Opacus warns that the seeded generator is not secure_mode: said once, in the README.
        warnings.simplefilter("ignore", UserWarning)
        engine = PrivacyEngine(accountant=ACCOUNTANT)
        private_layers, private_optimiser, loader = engine.make_private_with_epsilon(
            module=layers,
            optimizer=optimiser,
            data_loader=rows,
            target_epsilon=privacy.target_epsilon,
            target_delta=privacy.target_delta,
            epochs=epochs,
            max_grad_norm=privacy.max_grad_norm,
            noise_generator=torch.Generator().manual_seed(seed + 1),
        )
    log.info(
        "DP-SGD: noise multiplier %.3f, clipping at %g, sample rate %.4f, %d epochs",
        private_optimiser.noise_multiplier,
        privacy.max_grad_norm,
        1 / len(rows),
        epochs,
    )
    return PrivateTraining(private_layers, private_optimiser, loader, engine, privacy.target_delta)
