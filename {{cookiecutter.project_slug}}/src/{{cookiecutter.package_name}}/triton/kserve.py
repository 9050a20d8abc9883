"""A KServe v2 (Open Inference Protocol) client for Triton: rows in, the model's outputs as arrays out.

Plain JSON over HTTP (standard library + numpy): what a smoke test or a caller needs, without
`tritonclient` and its dependencies. Rows are the server's own shape (`{column name: value}`) and are
turned into the contract's inputs (serving/contract.py): one [N, 1] tensor per feature, FP32 or BYTES.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from ..errors import CheckFailed
from ..serving import contract

DATATYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_}


def model_url(url: str, model: str) -> str:
    return f"{url.rstrip('/')}/v2/models/{urllib.parse.quote(model, safe='')}"


def request_body(records: list[dict], schema: dict) -> dict:
    """The v2 inference request for rows sent by column name (None = missing)."""
    inputs = []
    for name, values in contract.feeds_from_records(records, schema).items():
        number = values.dtype == np.float32
        data = values.reshape(-1).tolist()
        if number and any(math.isnan(value) for value in data):
            # JSON has no NaN: a missing number cannot travel in a v2 JSON request.
            raise CheckFailed(
                f"input {name!r} has a missing value: KServe v2 JSON cannot carry NaN; send complete rows"
            )
        inputs.append(
            {"name": name, "shape": list(values.shape), "datatype": "FP32" if number else "BYTES", "data": data}
        )
    return {"inputs": inputs}


def _call(url: str, body: dict | None, timeout: float) -> dict:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"{url}: {error.code} {error.read().decode(errors='replace')[:500]}") from error
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        raise CheckFailed(f"{url}: no answer ({error}); is Triton running and the model loaded?") from error


def infer(url: str, model: str, records: list[dict], schema: dict, timeout: float = 30) -> dict[str, np.ndarray]:
    """POST /v2/models/<model>/infer; each output by name, as an array of its shape (BYTES as str)."""
    answer = _call(f"{model_url(url, model)}/infer", request_body(records, schema), timeout)
    results = {}
    for output in answer.get("outputs", []):
        dtype = DATATYPES.get(output["datatype"], object)
        results[output["name"]] = np.asarray(output["data"], dtype=dtype).reshape(output["shape"])
    return results


def model_config(url: str, model: str, timeout: float = 10) -> dict:
    """GET /v2/models/<model>/config: the loaded config.pbtxt as JSON (its parameters carry the lineage)."""
    return _call(f"{model_url(url, model)}/config", None, timeout)


def parameter(config: dict, key: str) -> str:
    return str(config.get("parameters", {}).get(key, {}).get("string_value", ""))
