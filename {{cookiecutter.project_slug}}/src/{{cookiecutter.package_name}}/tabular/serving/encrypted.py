"""Encrypted inference: linear scores of CKKS-encrypted rows, computed without the secret key (TenSEAL).

Layout: rows go in the slots of a ciphertext, one ciphertext per prepared feature (a "pack" holds
up to SLOTS rows). A score is then sum_j w_j * x_j + b: one plaintext multiplication and one addition
per feature, and no rotation. Rotations (one row per ciphertext, summed across its slots) would need
Galois keys in every request's public context: 35 MB at these parameters, against 0.24 MB per
ciphertext. The cost is that a single row still takes one ciphertext per feature (README: the figures).

Request (JSON, from `encrypt-request`): {"context": public context, "transform_sha256": the
transform it was prepared with, "rows": N, "packs": [[ciphertext per feature] per pack]}; response:
{"rows": N, "scores": [[ciphertext per score] per pack], "link", "transform_sha256"}. Binary values
are base64. The context must not hold a secret key: the server refuses it, and never has one.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

if TYPE_CHECKING:  # the client imports this module too: keep onnxruntime out of its start-up
    from .linear import LinearModel

# CKKS at 128-bit security: N = 8192 (4096 slots), a 40-bit scale and one 40-bit level for the one
# plaintext multiplication; maximum error about 1e-5 on scores of the bundled data.
POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (60, 40, 60)
SCALE_BITS = 40
SLOTS = POLY_MODULUS_DEGREE // 2


class RequestError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(422, f"{where}: expected a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise RequestError(422, f"{where}: not base64 ({error})") from None


def pack_sizes(rows: int) -> list[int]:
    return [min(SLOTS, rows - start) for start in range(0, rows, SLOTS)]


def _field(request: dict, name: str, kind: type) -> Any:
    value = request.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RequestError(422, f"{name}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _public_context(request: dict) -> Any:
    import tenseal as ts

    try:
        context = ts.context_from(decode(request.get("context"), "context"))
    except RequestError:
        raise
    except Exception as error:  # TenSEAL raises its own types for a malformed context
        raise RequestError(422, f"context: not a serialised TenSEAL context ({error})") from None
    if context.is_private():
        raise RequestError(
            400,
            "context: it holds the secret key, which must never leave the client; send the public context "
            "(encrypt-request does) and generate a new key pair, since this one was disclosed",
        )
    _check_parameters(context)
    return context


ALLOWED = (
    f"CKKS with poly_modulus_degree {POLY_MODULUS_DEGREE}, coefficient moduli {list(COEFF_MOD_BIT_SIZES)} bits "
    f"and scale 2^{SCALE_BITS} (GET /encrypted's ckks; encrypt-request uses them)"
)


def _check_parameters(context: Any) -> None:
    """400 unless the context has the published parameters: others cost more (a larger ring is up to
    several times the work and memory per ciphertext) or give less than 128-bit security (a smaller
    one). SEAL does not expose each modulus' size: their count and total are checked."""
    import tenseal as ts

    data = context.seal_context().data.key_context_data()
    parameters = data.parms()
    try:
        scale = context.global_scale
    except ValueError:  # TenSEAL's "no global scale"
        scale = None
    found = (
        parameters.scheme() == ts.SCHEME_TYPE.CKKS.value,
        parameters.poly_modulus_degree(),
        data.chain_index() + 1,  # the key level holds every modulus
        data.total_coeff_modulus_bit_count(),
        scale,
    )
    if found != (True, POLY_MODULUS_DEGREE, len(COEFF_MOD_BIT_SIZES), sum(COEFF_MOD_BIT_SIZES), 2.0**SCALE_BITS):
        raise RequestError(
            400,
            f"context: {parameters.scheme().name} with poly_modulus_degree {found[1]}, {found[2]} coefficient moduli "
            f"of {found[3]} bits in all, scale {'unset' if scale is None else f'{scale:g}'}: not the parameters this "
            f"server takes. Allowed: {ALLOWED}",
        )


def spec(linear: LinearModel, described: dict, max_rows: int) -> dict:
    """GET /encrypted: what a client needs to prepare, encrypt and later read a request (encrypt-request)."""
    return {
        "model_name": described["model_name"],
        "model_version": described["model_version"],
        "run_id": described["run_id"],
        "task": described["task"],
        "classes": described["classes"],
        "link": linear.link,
        "prepared_features": linear.features,
        "transform": encode(linear.transform),
        "transform_sha256": linear.transform_sha256,
        "max_rows": max_rows,
        "ckks": {
            "poly_modulus_degree": POLY_MODULUS_DEGREE,
            "coeff_mod_bit_sizes": list(COEFF_MOD_BIT_SIZES),
            "scale_bits": SCALE_BITS,
            "rows_per_pack": SLOTS,
        },
    }


def score(linear: LinearModel, body: bytes | bytearray, max_rows: int) -> bytes:
    """The encrypted scores of an encrypted request, as the response body; RequestError if it is unusable."""
    import tenseal as ts

    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestError(400, f"body: not JSON ({error})") from None
    if not isinstance(request, dict):
        raise RequestError(422, "body: expected an object with context, transform_sha256, rows and packs")
    if request.get("transform_sha256") != linear.transform_sha256:
        raise RequestError(
            409,
            "transform_sha256: the rows were prepared with another model's feature transform than the one "
            "served now; run encrypt-request again against this server",
        )
    rows = _field(request, "rows", int)
    if not 1 <= rows <= max_rows:
        raise RequestError(422, f"rows: {rows} is not from 1 to {max_rows} (MAX_BATCH_ROWS); split the batch")
    packs = _field(request, "packs", list)
    sizes = pack_sizes(rows)
    if len(packs) != len(sizes) or any(not isinstance(p, list) or len(p) != linear.features for p in packs):
        raise RequestError(
            422,
            f"packs: expected {len(sizes)} lists of {linear.features} ciphertexts (one per prepared feature) "
            f"for {rows} rows at {SLOTS} rows per pack",
        )
    context = _public_context(request)
    scores = []
    for index, (pack, size) in enumerate(zip(packs, sizes, strict=True)):
        columns = []
        for j, value in enumerate(pack):
            where = f"packs[{index}][{j}]"
            try:
                column = ts.ckks_vector_from(context, decode(value, where))
            except RequestError:
                raise
            except Exception as error:
                raise RequestError(422, f"{where}: not a CKKS vector of this context ({error})") from None
            if column.size() != size:
                raise RequestError(422, f"{where}: holds {column.size()} rows, expected {size}")
            columns.append(column)
        try:
            encrypted_scores = [
                _linear_score(columns, weights, bias) for weights, bias in zip(linear.weights, linear.bias, strict=True)
            ]
        except (ValueError, RuntimeError) as error:  # e.g. "scale out of bounds": no room for a multiplication
            raise RequestError(
                422,
                f"context: its parameters cannot hold one multiplication ({error}); use "
                f"N={POLY_MODULUS_DEGREE}, coefficient moduli {list(COEFF_MOD_BIT_SIZES)}, scale 2^{SCALE_BITS}",
            ) from None
        scores.append([encode(vector.serialize()) for vector in encrypted_scores])
    return orjson.dumps(
        {"rows": rows, "scores": scores, "link": linear.link, "transform_sha256": linear.transform_sha256}
    )


def _linear_score(columns: list, weights: np.ndarray, bias: float) -> Any:
    total = None
    for column, weight in zip(columns, weights, strict=True):
        if weight == 0.0:  # SEAL refuses a product with an all-zero plaintext (a "transparent" ciphertext)
            continue
        term = column * float(weight)
        total = term if total is None else total.add_(term)
    if total is None:  # every weight is zero: the score is the bias, encrypted under the public key
        import tenseal as ts

        return ts.ckks_vector(columns[0].context(), [float(bias)] * columns[0].size())
    return total.add_(float(bias))
