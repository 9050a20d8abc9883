"""`triton-repository`: the Triton model repository of an ONNX file (export writes the onnxruntime one)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

from .. import config as configuration
from .. import lineage
from ..errors import UsageError
from ..ops import github_ci
from . import repository


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=Path("outputs") / lineage.ONNX_FILE, help="ONNX file")
    parser.add_argument("--output", type=Path, default=Path("outputs") / lineage.TRITON_FOLDER, help="repository root")
    parser.add_argument(
        "--backend",
        choices=["onnxruntime", "python"],
        default="onnxruntime",
        help="onnxruntime: NVIDIA's image; python: onnxruntime inside Triton's Python backend",
    )
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="serve.triton settings, model name")
    parser.add_argument(
        "--publish", action="store_true", help="print server= and model_name= (and to $GITHUB_OUTPUT in Actions)"
    )


def run(args: argparse.Namespace) -> None:
    settings = configuration.load(args.config)
    if not args.model.is_file():
        raise UsageError(f"{args.model}: ONNX file not found; run `export` (or `download-onnx`) first")
    folder = repository.write(
        args.output, settings.tracking.model_name, onnx.load(str(args.model)), settings.serve.triton, args.backend
    )
    print(f"wrote {folder} ({args.backend} backend)", file=sys.stderr)
    if args.publish:  # what the release's image and deploy jobs need: which server, which model
        github_ci.publish({"server": settings.serve.server, "model_name": settings.tracking.model_name})


COMMANDS = {"triton-repository": ("write the Triton model repository of an ONNX file", add_arguments, run)}
