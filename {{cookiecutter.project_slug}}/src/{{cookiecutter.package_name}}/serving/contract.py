"""The ONNX contract: what every exported model takes, gives and says about itself.

Inputs: one per raw feature column, named as the column, shape [N, 1]: float32 for a `number`
column, string for any other. Outputs: `label` [N] and `probabilities` [N, classes] for
classification, `prediction` [N, 1] for regression. Metadata: `mlops.schema` (JSON: task, target,
features with their types and categories, classes) and the lineage entries `mlops.model_name`,
`mlops.run_id` and `mlops.git_sha`.

The export (onnx_model.py) writes it and the server (model.py) checks it; numpy only, so it ships in
the serving image without the training libraries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np

TASKS = ("binary", "multiclass", "regression")
CLASSIFICATION_OUTPUTS = ("label", "probabilities")
REGRESSION_OUTPUTS = ("prediction",)
NUMBER = "number"
INPUT_TYPES = {NUMBER: "tensor(float)", "string": "tensor(string)"}

PREFIX = "mlops."
SCHEMA = f"{PREFIX}schema"
MODEL_NAME = f"{PREFIX}model_name"
MODEL_VERSION = f"{PREFIX}model_version"
RUN_ID = f"{PREFIX}run_id"
GIT_SHA = f"{PREFIX}git_sha"


def outputs(task: str) -> tuple[str, ...]:
    return REGRESSION_OUTPUTS if task == "regression" else CLASSIFICATION_OUTPUTS


def input_type(kind: str) -> str:
    """The ONNX type of a feature's input: float for numbers, string for everything else."""
    return INPUT_TYPES[NUMBER] if kind == NUMBER else INPUT_TYPES["string"]


def kinds(schema: dict) -> dict[str, str]:
    """Feature name -> kind, in model input order, from the `mlops.schema` JSON."""
    return {feature["name"]: feature["type"] for feature in schema.get("features", [])}


def column(values: Iterable, kind: str) -> np.ndarray:
    """One input: the values as an (N, 1) array of the dtype the input takes."""
    if kind == NUMBER:
        return np.asarray(values, dtype=np.float32).reshape(-1, 1)
    return np.array([str(value) for value in values], dtype=object).reshape(-1, 1)


def feeds(columns: Mapping[str, Iterable], features: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The model's inputs from columns of values (a DataFrame, or a dict of lists): one per feature."""
    return {name: column(columns[name], kind) for name, kind in features.items()}


def feeds_from_records(records: list[dict], features: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The model's inputs from rows as a client sends them (a list of {column: value})."""
    return feeds({name: [record[name] for record in records] for name in features}, features)


def metadata(schema: dict, lineage: Mapping[str, object]) -> dict[str, str]:
    """The metadata entries an exported file carries: its schema, and where it came from."""
    return {SCHEMA: json.dumps(schema)} | {f"{PREFIX}{key}": str(value) for key, value in lineage.items()}
