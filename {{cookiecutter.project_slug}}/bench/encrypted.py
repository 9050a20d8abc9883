"""The cost of encrypted inference for this project's linear model
(src/{{ cookiecutter.package_name }}/tabular/README.md, "Encrypted inference (linear models)").

Run after `make pipeline` with `model.estimator: linear`:  python bench/encrypted.py [--rows 1 64 4096]

In-process, with the code the server and the client run (no HTTP): per request size, the client's
transform + encryption, the server's computation (from the request body, public context only), the
client's decryption, and the request and response sizes; per row and per request. Then, for
comparison, the layout this project does not use: one row per ciphertext, a dot product by rotations,
which needs Galois keys in the public context. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from {{ cookiecutter.package_name }}.serving import model
from {{ cookiecutter.package_name }}.serving.settings import Settings
from {{ cookiecutter.package_name }}.tabular import config as configuration
from {{ cookiecutter.package_name }}.tabular.commands import encrypted_client
from {{ cookiecutter.package_name }}.tabular.dataio import data
from {{ cookiecutter.package_name }}.tabular.serving import encrypted, linear


def timed(call: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds over `repeats` calls after a warm-up call (first calls allocate), and the last result."""
    result = call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def records(config: configuration.Config, rows: int) -> list[dict]:
    frame = data.read_table(config.data_path, config.data.csv).drop(columns=[config.data.target])
    frame = frame.sample(n=rows, replace=len(frame) < rows, random_state=0)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def row_layout(linear_model: linear.LinearModel, prepared: np.ndarray, repeats: int) -> None:
    """One row per ciphertext, scores by vector-matrix product (rotations): the layout not taken."""
    import tenseal as ts

    context = encrypted_client.new_context()
    context.generate_galois_keys()
    public = context.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=True)
    server = ts.context_from(public)
    vector = ts.ckks_vector(context, prepared[0].tolist()).serialize()
    bias = linear_model.bias.tolist()
    if len(bias) == 1:  # one score: a dot product (a sum by log2(slots) rotations), cheaper than a product by matrix
        weights = linear_model.weights[0].tolist()
        seconds, _ = timed(lambda: ts.ckks_vector_from(server, vector).dot(weights) + bias, repeats)
    else:
        matrix = linear_model.weights.T.tolist()
        seconds, _ = timed(lambda: ts.ckks_vector_from(server, vector).matmul(matrix) + bias, repeats)
    print(
        f"\nNot used: one row per ciphertext (dot product by rotations): {seconds * 1000:.1f} ms of server time "
        f"per row, {len(vector) / 1e6:.2f} MB per row, and a public context with Galois keys of "
        f"{len(public) / 1e6:.1f} MB in every request."
    )


def measure(spec: dict, linear_model: linear.LinearModel, prepared: np.ndarray, repeats: int) -> str:
    """One table row: the client's encryption (a new key pair included), the server's work, the decryption."""
    rows, max_rows = len(prepared), spec["max_rows"]
    encrypt_s, (request, secret) = timed(lambda: encrypted_client.encrypt(spec, prepared), repeats)
    body = json.dumps(request).encode()
    score_s, answer = timed(lambda: encrypted.score(linear_model, body, max_rows), repeats)
    response = json.loads(answer)
    decrypt_s, result = timed(lambda: encrypted_client.decrypt(response, secret), repeats)
    error = np.abs(np.asarray(result["scores"]) - linear_model.scores(prepared)).max()
    per_row = " | ".join(f"{seconds / rows * 1000:.3f}" for seconds in (encrypt_s, score_s, decrypt_s))
    return f"| {rows} | {per_row} | {len(body) / 1e6:.2f} | {len(answer) / 1e6:.2f} | {error:.1e} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--model", type=Path, default=Path("outputs/model.onnx"))
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 64, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = configuration.load(args.config)
    served = model.load(Settings(model_path=args.model))
    linear_model = linear.extract(served)  # what the server does at start-up: refuses a model that is not linear
    spec = encrypted.spec(linear_model, served.describe(), max(args.rows))
    print(
        f"{args.model}: {linear_model.link} link, {linear_model.weights.shape[0]} score(s) of "
        f"{linear_model.features} prepared features; CKKS N={encrypted.POLY_MODULUS_DEGREE}, "
        f"{encrypted.SLOTS} rows per ciphertext\n"
    )
    print("| rows | keys + encrypt ms/row | server ms/row | decrypt ms/row | request MB | response MB | max error |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        print(measure(spec, linear_model, encrypted_client.prepare(spec, records(config, rows)), args.repeats))
    row_layout(linear_model, encrypted_client.prepare(spec, records(config, 1)), args.repeats)


if __name__ == "__main__":
    main()
