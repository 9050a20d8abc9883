"""`serve` command for the project CLI: the ONNX inference server (see serving/)."""

from __future__ import annotations

from .serving.server import add_arguments, run

__all__ = ["add_arguments", "run"]
