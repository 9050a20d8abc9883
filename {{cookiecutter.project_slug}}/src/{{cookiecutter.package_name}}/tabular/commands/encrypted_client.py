"""`encrypt-request` and `decrypt-response`: the client of the server's encrypted endpoint (README).

encrypt-request: rows (CSV or JSON) -> the model's feature transform, published by the server at
GET /encrypted and run here in plaintext -> CKKS-encrypted with a new key pair, one ciphertext per
prepared feature for up to 4096 rows -> a request file to POST to /encrypted/predict. The secret key
goes to a local file (mode 0600) that is never sent. decrypt-response: the server's response and
that file -> the scores, and the predictions through the model's link function, applied here.

The encryption parameters are this project's own (tabular/serving/encrypted.py), never taken from the
server: a server cannot talk its clients into weaker ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UsageError
from ...serving import contract
from ..serving import encrypted

log = logging.getLogger(__name__)


def read_spec(source: str) -> dict:
    """GET /encrypted of the server at `source` (a URL), or that answer saved to a file."""
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(f"{source.rstrip('/')}/encrypted", timeout=30) as answer:
                raw = answer.read()
        else:
            raw = Path(source).read_bytes()
        spec = json.loads(raw)
    except urllib.error.HTTPError as error:
        hint = " (is ENCRYPTED_INFERENCE=true on the server?)" if error.code == 404 else ""
        raise UsageError(f"--server {source}: GET /encrypted answered {error.code}{hint}") from error
    except (OSError, ValueError) as error:
        raise UsageError(f"--server {source}: cannot read the encrypted endpoint's description ({error})") from error
    if not isinstance(spec, dict) or not {"transform", "transform_sha256", "link", "classes"} <= spec.keys():
        raise UsageError(f"--server {source}: not what GET /encrypted answers (transform, link, classes...)")
    return spec


def read_rows(path: Path) -> list[dict]:
    """Rows as records, from a CSV file (empty cells are missing values) or a JSON list of records."""
    if not path.is_file():
        raise UsageError(f"{path}: file not found")
    if path.suffix.lower() == ".json":
        try:
            value = json.loads(path.read_text())
        except ValueError as error:
            raise UsageError(f"{path}: not JSON ({error})") from error
        records = value.get("records") if isinstance(value, dict) else value
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise UsageError(f"{path}: expected a list of records, or an object with a 'records' list")
        return records
    import pandas as pd

    frame = pd.read_csv(path)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def prepare(spec: dict, records: list[dict]) -> np.ndarray:
    """The rows through the model's feature transform: float64 (rows, prepared features)."""
    import onnxruntime as ort

    transform = encrypted.decode(spec["transform"], "transform")
    if hashlib.sha256(transform).hexdigest() != spec["transform_sha256"]:
        raise UsageError("the server's transform does not match its transform_sha256: fetch it again")
    session = ort.InferenceSession(transform, providers=["CPUExecutionProvider"])
    schema = json.loads(session.get_modelmeta().custom_metadata_map[contract.SCHEMA])
    names = [feature["name"] for feature in schema["features"]]
    missing = sorted({name for record in records for name in names if name not in record})
    if missing:
        raise UsageError(f"rows: missing columns {', '.join(missing)} (the model takes {', '.join(names)})")
    (prepared,) = session.run(None, contract.feeds_from_records(records, schema))
    return np.asarray(prepared, np.float64)


def new_context() -> Any:
    import tenseal as ts

    context = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=encrypted.POLY_MODULUS_DEGREE,
        coeff_mod_bit_sizes=list(encrypted.COEFF_MOD_BIT_SIZES),
    )
    context.global_scale = 2**encrypted.SCALE_BITS
    return context


def encrypt(spec: dict, prepared: np.ndarray) -> tuple[dict, dict]:
    """(the request to send, the secret state to keep) for the prepared rows."""
    import tenseal as ts

    context = new_context()
    packs, start = [], 0
    for size in encrypted.pack_sizes(len(prepared)):
        block = prepared[start : start + size]
        packs.append([encrypted.encode(ts.ckks_vector(context, column).serialize()) for column in block.T])
        start += size
    public = context.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )
    request = {
        "context": encrypted.encode(public),
        "transform_sha256": spec["transform_sha256"],
        "rows": len(prepared),
        "packs": packs,
    }
    secret = {
        "context": encrypted.encode(context.serialize(save_secret_key=True)),
        "rows": len(prepared),
        **{key: spec.get(key) for key in ("transform_sha256", "link", "classes", "task", "model_version", "run_id")},
    }
    return request, secret


def decrypt(response: dict, secret: dict) -> dict:
    """The predictions in /predict's shape, plus the decrypted scores."""
    import tenseal as ts

    from ..serving.linear import linked

    if response.get("transform_sha256") != secret["transform_sha256"] or response.get("rows") != secret["rows"]:
        raise UsageError(
            "response: not the answer to the request this secret file belongs to (another model or row count)"
        )
    context = ts.context_from(encrypted.decode(secret["context"], "secret context"))
    packs = []
    for pack in response["scores"]:
        packs.append(np.stack([ts.ckks_vector_from(context, encrypted.decode(v, "scores")).decrypt() for v in pack], 1))
    scores = np.concatenate(packs)
    values = linked(scores, secret["link"])
    if secret["link"] == "identity":
        return {"predictions": values.tolist(), "scores": scores.tolist()}
    classes = secret["classes"]
    return {
        "predictions": [classes[i] for i in values.argmax(axis=1)],
        "probabilities": values.tolist(),
        "classes": classes,
        "scores": scores.tolist(),
    }


def write_private(path: Path, payload: bytes) -> None:
    """Readable by this user only (the secret key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(payload)
    path.chmod(0o600)


def read_json(path: Path, what: str) -> dict:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: cannot read the {what} ({error})") from error
    if not isinstance(value, dict):
        raise UsageError(f"{path}: not a {what}")
    return value


def add_encrypt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rows", type=Path, help="rows to predict: .csv, or .json (records or {'records': [...]})")
    parser.add_argument("--server", required=True, help="the server's URL (reads its GET /encrypted), or that saved")
    parser.add_argument("--output", type=Path, default=Path("encrypted-request.json"), help="request to POST")
    parser.add_argument(
        "--secret",
        type=Path,
        default=Path("encrypted-secret.json"),
        help="where the secret key is written (mode 0600): keep it, never send it",
    )


def encrypt_request(args: argparse.Namespace) -> None:
    spec = read_spec(args.server)
    records = read_rows(args.rows)
    if not 1 <= len(records) <= spec.get("max_rows", len(records)):
        raise UsageError(f"{args.rows}: {len(records)} rows; the server takes 1 to {spec.get('max_rows')} per request")
    request, secret = encrypt(spec, prepare(spec, records))
    write_private(args.secret, json.dumps(secret).encode())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(request))
    log.info(
        "encrypted %d rows into %s (%.1f MB); secret key in %s: POST the request to /encrypted/predict",
        len(records),
        args.output,
        args.output.stat().st_size / 1e6,
        args.secret,
    )


def add_decrypt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("response", type=Path, help="what POST /encrypted/predict answered")
    parser.add_argument("--secret", type=Path, default=Path("encrypted-secret.json"), help="from encrypt-request")
    parser.add_argument("--output", type=Path, help="predictions as JSON (default: standard output)")


def decrypt_response(args: argparse.Namespace) -> None:
    result = json.dumps(decrypt(read_json(args.response, "response"), read_json(args.secret, "secret file")))
    if args.output is None:
        sys.stdout.write(result + "\n")
    else:
        args.output.write_text(result)


# name -> (help, add_arguments, run): the project CLI's commands.
COMMANDS = {
    "encrypt-request": (
        "encrypt rows for the server's /encrypted/predict (the secret key stays here)",
        add_encrypt_arguments,
        encrypt_request,
    ),
    "decrypt-response": (
        "decrypt /encrypted/predict's answer into predictions",
        add_decrypt_arguments,
        decrypt_response,
    ),
}
