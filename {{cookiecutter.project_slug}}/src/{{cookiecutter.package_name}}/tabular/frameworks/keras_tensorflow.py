"""Keras 3 on the TensorFlow backend (no PyTorch): keras3.py's network, with TensorFlow's kernels and event files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import use_keras_backend

use_keras_backend("tensorflow")  # before keras3 imports keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notices, not its errors

import tensorflow as tf  # noqa: E402

from . import keras3  # noqa: E402


class KerasTensorFlow(keras3.Keras):
    name = "tensorflow"
    backend_package = "tensorflow-cpu"

    def deterministic(self) -> None:
        tf.config.experimental.enable_op_determinism()

    def open_board(self, folder: str) -> TensorFlowBoard:
        return TensorFlowBoard(Path(folder))


class TensorFlowBoard:
    """tabular.Board on tf.summary: the layout torch's SummaryWriter.add_scalars writes (a run per
    `<tag>_<name>`), so TensorBoard shows the same curves whichever backend trained."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.writers: dict[str, Any] = {}

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict[str, float], global_step: int, /) -> None:
        for name, value in tag_scalar_dict.items():
            run = f"{main_tag}_{name}"
            if run not in self.writers:
                self.writers[run] = tf.summary.create_file_writer(str(self.folder / run))
            with self.writers[run].as_default():
                tf.summary.scalar(main_tag, value, step=global_step)

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
