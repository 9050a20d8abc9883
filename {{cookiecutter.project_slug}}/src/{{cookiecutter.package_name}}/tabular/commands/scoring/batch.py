"""One file scored chunk by chunk: read (data.read_chunks), validate (the training suite), predict
(onnxruntime through the ONNX contract, as the server does), append to Parquet, optionally log.

Memory holds one chunk. The Parquet file is written under a temporary name beside the target and
renamed only once every chunk has passed: a failure at any chunk leaves no output (and, with the
prediction log, no rows: the whole file is one database transaction).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ....errors import CheckFailed, UsageError
from ....serving import contract, prediction_log
from ....serving.model import Model
from ...config import Config
from ...dataio import data
from ...stages import validate
from .source import Source

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

log = logging.getLogger(__name__)

PREDICTION = "prediction"
PROBABILITY = "probability_"  # + class label: one column per class
MODEL_VERSION, RUN_ID, REQUEST_ID = "model_version", "run_id", "request_id"
# Facts about a whole training table, not about a chunk of a file to score: a last chunk of 20 rows
# is not too small, and a chunk of one class is not a bad target.
WHOLE_TABLE = ("expect_table_row_count_to_be_between", "expect_column_unique_value_count_to_be_between")


@dataclass(frozen=True)
class Scored:
    output: Path
    rows: int
    chunks: int
    seconds: float
    logged: int  # rows written to the prediction log


def score(
    config: Config,
    model: Model,
    source: Source,
    path: Path,
    output: Path,
    chunk_rows: int,
    database_url: str | None = None,
) -> Scored:
    """Score `path` into `output` (and the prediction log at `database_url`), or raise leaving neither."""
    csv = config.data.csv
    checked, text = _columns(config, model, source, path, database_url is not None)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    batch_id = uuid.uuid4().hex
    began, rows, chunks, logged = time.monotonic(), 0, 0, 0
    try:
        with ExitStack() as stack:
            connection = None
            if database_url is not None:
                connection = stack.enter_context(prediction_log.connect(database_url))
                # One transaction for the file: each chunk's write is a savepoint inside it, and
                # nothing is committed unless every chunk passed.
                stack.enter_context(connection.transaction())
            writer: pq.ParquetWriter | None = None
            runner = None
            input_schema = _file_schema(path) if data.table_format(path) == "parquet" else None
            for chunk in data.read_chunks(path, csv, chunk_rows, text=text):
                if chunk.empty:
                    continue
                chunks += 1
                where = f"{path}: chunk {chunks} (rows {rows + 1}-{rows + len(chunk)})"
                if runner is None:  # built once, from the first chunk (about 3 s: Great Expectations' import)
                    runner = validate.suite_runner(config, _suite(config, chunk[checked]), checked)
                    began = time.monotonic()  # rows/s below is scoring's own, after this one-time set-up
                if failures := validate.describe_failures(runner(chunk[checked])):
                    raise CheckFailed(
                        f"{where}: {len(failures)} expectation(s) failed:\n  "
                        + "\n  ".join(failures)
                        + f"\nnothing was written to {output}"
                    )
                body = _predict(model, chunk, where)
                inputs = _inputs_table(chunk, input_schema, where)
                input_schema = inputs.schema
                request_id = f"batch-{batch_id}-{chunks}"
                table = _with_predictions(inputs, model, body, source, request_id if connection else None)
                if writer is None:
                    writer = stack.enter_context(pq.ParquetWriter(partial, table.schema))
                writer.write_table(table)
                if connection is not None:
                    logged += prediction_log.write(
                        connection,
                        prediction_log.Model(source.name, source.model_version, source.run_id),
                        "batch",
                        request_id,
                        _records(chunk, [feature.name for feature in model.features]),
                        _listed(body["predictions"]),
                        _listed(body["probabilities"]) if model.classification else None,
                    )
                rows += len(chunk)
                elapsed = time.monotonic() - began
                log.info("chunk %d: %d rows scored, %.0f rows/s", chunks, rows, rows / max(elapsed, 1e-9))
            if writer is None:
                raise UsageError(f"{path}: the file has no rows")
        os.replace(partial, output)  # after the log's commit: a file on disk means every row was logged
    finally:
        partial.unlink(missing_ok=True)
    return Scored(output, rows, chunks, time.monotonic() - began, logged)


def _columns(
    config: Config, model: Model, source: Source, path: Path, request_ids: bool
) -> tuple[list[str], list[str]]:
    """The file's columns the training suite checks, and those to read as text; refused (before any
    row is read) when a model input is missing or a column would be overwritten by the predictions."""
    _, names = data.checked_header(path, config.data.csv)
    features = [feature.name for feature in model.features]
    if missing := [name for name in features if name not in names]:
        raise UsageError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))} that {source.name} version "
            f"{source.model_version or '(local)'} takes; the file has: {', '.join(names)}"
        )
    if clash := [name for name in _added_columns(model, request_ids) if name in names]:
        raise UsageError(
            f"{path}: column(s) {', '.join(map(repr, clash))} would be overwritten by the predictions; "
            "rename them in the file"
        )
    # What the training suite knows: the model's inputs, the declared columns and the target. Other
    # columns (an id, a timestamp) pass through to the output as they are, as text from a CSV.
    target = config.data.target
    checked = [name for name in names if name in features or name in config.data.columns or name == target]
    passthrough = [name for name in names if name not in checked]
    return checked, [f.name for f in model.features if f.kind != contract.NUMBER] + passthrough


def _suite(config: Config, first: pd.DataFrame) -> list[Expectation]:
    """The training suite (stages/validate.py) for chunks of this file: the target's expectations
    only when the file has the target, and none about the whole table."""
    has_target = config.data.target in first.columns
    return [
        expectation
        for expectation in validate.expectations(config, first, require_target=False)
        if expectation.expectation_type not in WHOLE_TABLE
        and (has_target or getattr(expectation, "column", None) != config.data.target)
    ]


def _added_columns(model: Model, request_ids: bool) -> list[str]:
    probabilities = [f"{PROBABILITY}{label}" for label in model.classes] if model.classification else []
    return [PREDICTION, *probabilities, MODEL_VERSION, RUN_ID, *([REQUEST_ID] if request_ids else [])]


def _feeds(model: Model, chunk: pd.DataFrame) -> dict[str, np.ndarray]:
    """The contract's inputs, by input name: numbers as float32 (missing: NaN), text with missing
    values as contract.MISSING_CATEGORY, exactly as training and the server feed them."""
    columns: dict[str, Any] = {}
    for feature in model.features:
        values = chunk[feature.name]
        if feature.kind == contract.NUMBER:
            columns[feature.input] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            columns[feature.input] = values.astype(object).where(values.notna(), None)
    return contract.feeds(columns, {feature.input: feature.kind for feature in model.features})


def _predict(model: Model, chunk: pd.DataFrame, where: str) -> dict:
    try:
        return model.run(_feeds(model, chunk))
    except Exception as error:  # onnxruntime raises its own pybind types
        raise CheckFailed(f"{where}: the model could not score these rows: {error}") from error


def _file_schema(path: Path) -> pa.Schema:
    return pq.read_schema(path).remove_metadata()


def _inputs_table(chunk: pd.DataFrame, schema: pa.Schema | None, where: str) -> pa.Table:
    """The chunk's columns as Arrow, with one type per column for the whole file: a Parquet file's
    own types; for a CSV, numbers as float64 and text as text, fixed by the first chunk."""
    if schema is None:
        chunk = chunk.copy()
        for name in chunk.columns:
            if pd.api.types.is_numeric_dtype(chunk[name]) and not pd.api.types.is_bool_dtype(chunk[name]):
                chunk[name] = chunk[name].astype(np.float64)
    try:
        # Without pandas' metadata: it describes the first chunk's frame, not the file.
        return pa.Table.from_pandas(chunk, schema=schema, preserve_index=False).replace_schema_metadata()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise CheckFailed(
            f"{where}: a column's values do not fit the type the first chunk gave it ({error}); declare the "
            "column's type under data.columns in the config"
        ) from error


def _with_predictions(inputs: pa.Table, model: Model, body: dict, source: Source, request_id: str | None) -> pa.Table:
    rows = inputs.num_rows
    table = inputs.append_column(PREDICTION, pa.array(_listed(body["predictions"])))
    if model.classification:
        probabilities = np.asarray(body["probabilities"])
        for index, label in enumerate(model.classes):
            table = table.append_column(f"{PROBABILITY}{label}", pa.array(probabilities[:, index]))
    table = table.append_column(MODEL_VERSION, pa.array([source.model_version] * rows, pa.string()))
    table = table.append_column(RUN_ID, pa.array([source.run_id] * rows, pa.string()))
    if request_id is not None:  # with the prediction log: the id /feedback takes, one per chunk
        table = table.append_column(REQUEST_ID, pa.array([request_id] * rows, pa.string()))
    return table


def _records(chunk: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    """Rows as /predict takes them: the user's column names, missing values as None (JSON null)."""
    frame = chunk[features].astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def _listed(values: Any) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)
