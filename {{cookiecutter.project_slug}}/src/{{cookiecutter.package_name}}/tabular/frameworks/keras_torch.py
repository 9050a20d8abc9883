"""Keras 3 on the PyTorch backend (no TensorFlow): keras3.py's network, with torch's kernels and TensorBoard writer."""

from __future__ import annotations

from . import use_keras_backend

use_keras_backend("torch")  # before keras3 imports keras

import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from . import keras3  # noqa: E402


class KerasTorch(keras3.Keras):
    name = "keras"
    backend_package = "torch"

    def deterministic(self) -> None:
        torch.use_deterministic_algorithms(True)

    def open_board(self, folder: str) -> SummaryWriter:
        return SummaryWriter(folder)
