"""The ONNX contract: what every exported model takes, gives and says about itself.

Inputs: one per raw feature column, shape [N, 1]: float32 for a `number` column (NaN = missing,
imputed by the model), string for any other (a missing value is sent as MISSING_CATEGORY). ONNX
names must be C identifiers, and users' columns are often not (`work-class`, `fnlwgt/1000`, `Größe`):
each feature's input name is `input_names` of the column names, stored beside the column's own name
in the schema, and every consumer feeds by that stored name. Outputs: `label` [N] and `probabilities` [N, classes] for
classification, `prediction` [N, 1] for regression. Metadata: `mlops.schema` (JSON: task, target,
features with their names, input names, types and categories, classes) and the lineage entries `mlops.model_name`,
`mlops.run_id` and `mlops.git_sha`.

The export (onnx_model.py) writes it and the server (model.py) checks it; numpy only, so it ships in
the serving image without the training libraries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# A reinforcement-learning policy (rl/) answers like a classifier: `label` is the greedy action, and
# `probabilities` the policy's distribution over the actions; its features are the observation's components.
TASKS = ("binary", "multiclass", "regression", "reinforcement")
CLASSIFICATION_OUTPUTS = ("label", "probabilities")
REGRESSION_OUTPUTS = ("prediction",)
NUMBER = "number"
INPUT_TYPES = {NUMBER: "tensor(float)", "string": "tensor(string)"}
# What a missing category becomes before the model sees it (the encoders learn it as a category).
MISSING_CATEGORY = "missing"
# Names an input must not take: the graph's outputs and the names the exporters give their own nodes.
RESERVED = frozenset(("label", "probabilities", "prediction", "variable", "class_values", "class_index"))

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


def input_names(columns: Sequence[str]) -> list[str]:
    """A valid, unique ONNX input name per column, in order: `work-class` -> `work_class`.

    Non-identifier characters become `_`, a leading digit gets a `c_` prefix, and a name already
    taken (two columns that differ only in punctuation, or a reserved name) gets a `_2`, `_3` suffix.
    """
    taken = set(RESERVED)
    names = []
    for column in columns:
        base = re.sub(r"\W", "_", column, flags=re.ASCII)
        if not base or base[0].isdigit():
            base = f"c_{base}"
        name, suffix = base, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        names.append(name)
    return names


def kinds(schema: dict) -> dict[str, str]:
    """Input name -> kind, in model input order, from the `mlops.schema` JSON.

    Files exported before input names were stored use the column names as input names.
    """
    return {feature.get("input", feature["name"]): feature["type"] for feature in schema.get("features", [])}


def column(values: Iterable, kind: str) -> np.ndarray:
    """One input: the values as an (N, 1) array of the dtype the input takes; None is missing."""
    if kind == NUMBER:
        return np.asarray(values, dtype=np.float32).reshape(-1, 1)  # None becomes NaN
    categories = [MISSING_CATEGORY if value is None else str(value) for value in values]
    return np.array(categories, dtype=object).reshape(-1, 1)


def feeds(columns: Mapping[str, Iterable], features: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The model's inputs from columns of values keyed by input name (see `kinds`): one per feature."""
    return {name: column(columns[name], kind) for name, kind in features.items()}


def feeds_from_records(records: list[dict], schema: dict) -> dict[str, np.ndarray]:
    """The model's inputs from rows as a client sends them: a list of {column name: value}."""
    columns = {
        feature.get("input", feature["name"]): [record[feature["name"]] for record in records]
        for feature in schema["features"]
    }
    return feeds(columns, kinds(schema))


def metadata(schema: dict, lineage: Mapping[str, object]) -> dict[str, str]:
    """The metadata entries an exported file carries: its schema, and where it came from."""
    return {SCHEMA: json.dumps(schema)} | {f"{PREFIX}{key}": str(value) for key, value in lineage.items()}
