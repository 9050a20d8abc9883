"""Strict, fast request parsing: JSON bytes -> one (n, 1) numpy array per model input.

No per-row pydantic validation: the body is decoded with orjson, each column is collected with one
list comprehension and type-checked with one set of types, and the column-to-dtype plan is
resolved once per process. Every rejection is an `InputError` with a 4xx status and a message that
names the field (and row) and says what to send instead. A JSON null is a missing value: the
model imputes it exactly as it did for the missing values it was trained with.

Unseen categories are accepted when the model copes with them (the template's encoders ignore
unknown values: all their one-hot columns are 0); when the start-up probe found that the model
refuses them, they are rejected here with a 422 naming the row and the known values.

The same plan describes what it accepts as JSON Schema (`request_schemas`, the OpenAPI document's
request body): each describing function sits beside the check it describes, so a column, a type, a
category or a limit is written once, and /docs shows what the checks do (strict categories
included: the plan is built after the probe).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import orjson

from . import contract
from .model import Feature

FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMBER_TYPES = frozenset((int, float))  # bool is a subclass of int but its own type: excluded
NULL = type(None)
NUMBER_OR_NULL = NUMBER_TYPES | {NULL}
TEXT_OR_NULL = frozenset((str, NULL))


class InputError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Plan:
    """What to build for each input, resolved once from the model."""

    features: tuple[Feature, ...]
    max_rows: int

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def numeric(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.kind == "number")

    @cached_property
    def text(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.kind != "number")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    return "an array" if isinstance(value, list) else "an object"


def _decode(body: bytes) -> Any:  # whatever the JSON holds
    if not body.strip():
        raise InputError(
            400,
            'empty request body: send a JSON object with "records" (an array of rows) or "columns" '
            "(column name: array of values)",
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # NaN/Infinity are not JSON, but Python's json module writes them: decode such a body leniently
        # so the finiteness check can name the field and row instead of a character offset.
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise InputError(400, f"malformed JSON: {error}") from None


def _column_array(feature: Feature, values: list[Any], where: Callable[[int], str]) -> np.ndarray:
    if feature.kind == "number":
        if not set(map(type, values)) <= NUMBER_OR_NULL:
            index = next(i for i, v in enumerate(values) if type(v) not in NUMBER_OR_NULL)
            raise InputError(422, f"{where(index)}: expected a number or null, got {_describe(values[index])}")
        try:
            array = np.array(values, dtype=np.float64)  # null becomes NaN, which the model imputes
        except OverflowError:  # an integer too large even for float64
            index = next(i for i, v in enumerate(values) if v is not None and abs(v) > 1e308)
            raise InputError(422, f"{where(index)}: {values[index]} is out of range") from None
        # The model computes in float32: a finite float64 beyond its range would become infinity.
        bad = (~np.isfinite(array) | (np.abs(array) > FLOAT32_MAX)) & _not_null(values)
        if bad.any():
            index = int(np.argmax(bad))
            raise InputError(
                422, f"{where(index)}: expected a finite number within float32 range, got {values[index]!r}"
            )
        return array.astype(np.float32).reshape(-1, 1)
    kinds = set(map(type, values))
    if not kinds <= TEXT_OR_NULL:
        index = next(i for i, v in enumerate(values) if type(v) not in TEXT_OR_NULL)
        known = f" (one of: {', '.join(feature.categories)})" if feature.categories else ""
        raise InputError(422, f"{where(index)}: expected a string or null{known}, got {_describe(values[index])}")
    if NULL in kinds:
        values = [contract.MISSING_CATEGORY if value is None else value for value in values]
    if feature.strict_categories:
        allowed = set(feature.categories) | {contract.MISSING_CATEGORY}
        if not allowed.issuperset(values):
            index = next(i for i, v in enumerate(values) if v not in allowed)
            raise InputError(
                422,
                f"{where(index)}: unknown category {values[index]!r}; this model accepts "
                f"only: {', '.join(feature.categories)}",
            )
    return np.array(values, dtype=object).reshape(-1, 1)


def _not_null(values: list[Any]) -> np.ndarray | bool:
    """Where the values are not JSON null (a NaN from a null is a missing value, not a bad number)."""
    return True if None not in values else np.array([value is not None for value in values])


def _at(where: Callable[[int, str], str], name: str) -> Callable[[int], str]:
    """`where` for one column: row index -> its place in the request."""
    return lambda index: where(index, name)


def _arrays(plan: Plan, columns: dict[str, list[Any]], where: Callable[[int, str], str]) -> dict[str, np.ndarray]:
    """All numeric columns converted and checked as one block (one numpy call, not one per column);
    only when the block is bad is each column checked alone, to name the first bad value.

    Columns arrive by the users' names and leave by the model's input names."""
    out: dict[str, np.ndarray] = {}
    numeric = plan.numeric
    if numeric:
        values = [columns[f.name] for f in numeric]
        kinds: set[type] = set()
        for column in values:
            kinds.update(map(type, column))
        block = None
        if kinds <= NUMBER_TYPES:  # nulls take the slow path, which knows a null from a bad NaN
            try:
                block = np.array(values, dtype=np.float64)
            except OverflowError:
                block = None
        if block is None or not (np.isfinite(block) & (np.abs(block) <= FLOAT32_MAX)).all():
            for feature in numeric:  # raises for the first bad value, with its field and row
                out[feature.input] = _column_array(feature, columns[feature.name], _at(where, feature.name))
        else:
            block = block.astype(np.float32)
            for index, feature in enumerate(numeric):
                out[feature.input] = block[index].reshape(-1, 1)
    for feature in plan.text:
        out[feature.input] = _column_array(feature, columns[feature.name], _at(where, feature.name))
    return out


def _check_size(rows: int, field: str, plan: Plan) -> None:
    if rows == 0:
        raise InputError(422, f"{field}: empty batch; send at least one row")
    if rows > plan.max_rows:
        raise InputError(
            413, f"{field}: {rows} rows is over the limit of {plan.max_rows} (MAX_BATCH_ROWS); split the batch"
        )


def _record_problem(records: list[Any], plan: Plan) -> InputError:
    """The slow path, taken only once a batch is known to be bad: find the first bad row and say why."""
    expected = set(plan.names)
    for index, row in enumerate(records):
        if not isinstance(row, dict):
            return InputError(422, f"records[{index}]: expected an object of column: value, got {_describe(row)}")
        missing = [name for name in plan.names if name not in row]
        if missing:
            return InputError(422, f"records[{index}]: missing column {', '.join(map(repr, missing))}")
        unknown = [name for name in row if name not in expected]
        if unknown:
            return InputError(
                422,
                f"records[{index}]: unknown column {', '.join(map(repr, unknown))} "
                f"(the model takes: {', '.join(plan.names)})",
            )
    return InputError(422, "records: malformed rows")


def _from_records(records: object, plan: Plan) -> dict[str, np.ndarray]:
    if not isinstance(records, list):
        raise InputError(422, f"records: expected an array of objects, got {_describe(records)}")
    _check_size(len(records), "records", plan)
    width = len(plan.features)
    try:
        # Same number of keys and every expected key present means no unknown keys either.
        if any(len(row) != width for row in records):
            raise _record_problem(records, plan)
        columns = {name: [row[name] for row in records] for name in plan.names}
    except (KeyError, TypeError):
        raise _record_problem(records, plan) from None
    return _arrays(plan, columns, lambda i, n: f"records[{i}].{n}")


def _from_columns(columns: object, plan: Plan) -> dict[str, np.ndarray]:
    if not isinstance(columns, dict):
        raise InputError(422, f"columns: expected an object of column: [values], got {_describe(columns)}")
    missing = [name for name in plan.names if name not in columns]
    if missing:
        raise InputError(422, f"columns: missing column {', '.join(map(repr, missing))}")
    unknown = [name for name in columns if name not in set(plan.names)]
    if unknown:
        raise InputError(
            422, f"columns: unknown column {', '.join(map(repr, unknown))} (the model takes: {', '.join(plan.names)})"
        )
    for name in plan.names:
        if not isinstance(columns[name], list):
            raise InputError(422, f"columns.{name}: expected an array of values, got {_describe(columns[name])}")
    lengths = {name: len(columns[name]) for name in plan.names}
    rows = lengths[plan.names[0]]
    uneven = [f"{name} has {length}" for name, length in lengths.items() if length != rows]
    if uneven:
        raise InputError(
            422,
            f"columns: every column needs the same number of values; {plan.names[0]} has {rows}, {', '.join(uneven)}",
        )
    _check_size(rows, "columns", plan)
    return _arrays(plan, columns, lambda i, n: f"columns.{n}[{i}]")


def parse(body: bytes, plan: Plan) -> dict[str, np.ndarray]:
    payload = _decode(body)
    if not isinstance(payload, dict):
        raise InputError(422, f'body: expected a JSON object with "records" or "columns", got {_describe(payload)}')
    if "records" in payload and len(payload) == 1:
        return _from_records(payload["records"], plan)
    if "columns" in payload and len(payload) == 1:
        return _from_columns(payload["columns"], plan)
    keys = ", ".join(map(repr, payload)) or "none"
    raise InputError(422, f'body: expected exactly one of "records" or "columns", got keys: {keys}')


def rows_of(feeds: dict[str, np.ndarray]) -> int:
    return len(next(iter(feeds.values())))


# --- The same rules described as JSON Schema: the request body of the OpenAPI document ------------

MISSING_NOTE = "null when unknown: the model imputes it as it did in training."


def _value_schema(feature: Feature) -> dict[str, Any]:
    """One value that `_column_array` takes for `feature` (a new dict each time: no part of the document
    is shared, so a tool that edits one place of it edits nothing else)."""
    null = {"type": "null"}  # a missing value
    if feature.kind == "number":  # finite and within float32: JSON has no NaN or Infinity to exclude
        accepted: dict[str, Any] = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
        return {"anyOf": [accepted, null], "description": MISSING_NOTE}
    if not feature.categories:
        return {"anyOf": [{"type": "string"}, null], "description": MISSING_NOTE}
    note = (
        "Known values listed; unseen values are refused."
        if feature.strict_categories
        else "Known values listed; an unseen value is accepted and treated as none of them."
    )
    listed = {"type": "string", "enum": list(feature.categories)}
    return {"anyOf": [listed, null], "description": f"{note} {MISSING_NOTE}"}


def _batch(plan: Plan, items: dict[str, Any], description: str) -> dict[str, Any]:
    """An array of at most MAX_BATCH_ROWS items, not empty (`_check_size`)."""
    return {"type": "array", "items": items, "minItems": 1, "maxItems": plan.max_rows, "description": description}


def _closed_object(title: str, properties: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """An object with exactly these keys: a missing or an unknown one is refused."""
    return {
        "type": "object",
        "title": title,
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


def request_schemas(plan: Plan, ref: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """The bodies `parse` accepts, as named JSON Schemas (`ref(name)` is where each one is found):
    PredictRequest is a RecordsRequest (`_from_records`) or a ColumnsRequest (`_from_columns`)."""
    values = {feature.name: _value_schema(feature) for feature in plan.features}
    per_row = "One object per row"
    columns = {f.name: _batch(plan, _value_schema(f), "The column's values, one per row") for f in plan.features}
    return {
        "Record": _closed_object("Record", values),
        "Columns": _closed_object("Columns", columns),
        "RecordsRequest": _closed_object("RecordsRequest", {"records": _batch(plan, {"$ref": ref("Record")}, per_row)}),
        "ColumnsRequest": _closed_object(
            "ColumnsRequest",
            {"columns": {"$ref": ref("Columns"), "description": "One array per column, all of the same length"}},
        ),
        "PredictRequest": {"anyOf": [{"$ref": ref("RecordsRequest")}, {"$ref": ref("ColumnsRequest")}]},
    }
