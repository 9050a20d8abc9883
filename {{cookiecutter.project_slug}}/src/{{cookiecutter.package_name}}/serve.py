"""`serve` command of the project CLI: the ONNX inference server (see serving/)."""

from __future__ import annotations

from .serving.server import add_arguments, run

COMMANDS = {"serve": ("serve outputs/model.onnx over HTTP (FastAPI + onnxruntime)", add_arguments, run)}
