"""Prediction latency of the exported ONNX model (onnxruntime) against the native model, same rows.

Run after `make pipeline`:  python bench/onnx_vs_native.py [--repeats 200]
Prints the median and p95 latency for 1 row and for 1000 rows, and the file's size and parity.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import onnx

from {{ cookiecutter.package_name }}.tabular import config as configuration
from {{ cookiecutter.package_name }}.tabular.dataio import data, onnx_model
from {{ cookiecutter.package_name }}.tabular.stages.context import attach


def timed(call, repeats: int) -> tuple[float, float]:
    call()  # warm-up: first calls allocate
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    settings = configuration.load(args.config)
    context = attach(settings, None)
    model = context.framework.load_model(context.model_uri)
    path = settings.outputs / "model.onnx"
    session = onnx_model.session(onnx.load(path))
    rows = data.features(
        data.read_table(settings.data_path, settings.data.csv).sample(1000, replace=True, random_state=0),
        context.schema,
    )

    print(f"framework {settings.model.framework}, task {settings.task}, ONNX {path.stat().st_size / 1024:.1f} KB")
    print("| rows | onnxruntime median ms | p95 | native median ms | p95 | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in (1, 1000):
        batch = rows.head(size)
        feeds = onnx_model.feeds(batch, context.schema)
        exported = onnx_model.predict(session, feeds, context.schema.task)
        native = context.framework.predict(model, batch)
        if exported.probabilities is not None:
            assert np.allclose(exported.probabilities, native.probabilities, atol=settings.export.parity_tolerance)
        ort_ms = timed(lambda feeds=feeds: onnx_model.predict(session, feeds, context.schema.task), args.repeats)
        native_ms = timed(lambda batch=batch: context.framework.predict(model, batch), max(10, args.repeats // 10))
        print(
            f"| {size} | {ort_ms[0]:.3f} | {ort_ms[1]:.3f} | {native_ms[0]:.3f} | {native_ms[1]:.3f} | "
            f"{native_ms[0] / ort_ms[0]:.1f}x |"
        )


if __name__ == "__main__":
    main()
