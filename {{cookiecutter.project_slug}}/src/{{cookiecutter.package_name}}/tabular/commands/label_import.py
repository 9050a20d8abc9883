"""`import-labels`: true labels for many logged requests at once, from a CSV or Parquet file.

The batch form of POST /feedback. One line per predicted row: `request_id,row_index,label`, where
row_index is the row's place in its request (0 for the first; a one-row request has only 0); or
`request_id,label`, the rows of each request then taken in file order. Each request is labelled
in one transaction, all its rows or none: a request that is not in the log, whose row indexes do
not cover exactly its logged rows, or that is labelled already (a label is final, as through
/feedback), is listed and skipped (exit 1), the others are still recorded.

Each label must be one the served model can have, the same check as /feedback's: one of its classes
(read from the ONNX file, --model) or a finite number. A file with any other ("banana", a spreadsheet
formula, 1e309) is refused whole, naming its rows: nothing is written. Labels recorded here carry the
source `import`, which `monitor` trusts: whoever runs this holds the log's credentials.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import CheckFailed, UsageError
from ...serving import prediction_log
from ...serving.feedback import check_label
from ..dataio.data import table_format

log = logging.getLogger(__name__)
SHOWN = 10  # problems listed by name; the rest are counted
DEFAULT_MODEL = Path("outputs/model.onnx")


class Unchecked:
    """read_labels without a class check (reading a file's shape only)."""


UNCHECKED = Unchecked()


def checked(path: Path, frame: pd.DataFrame, classes: list | None) -> list[Any]:
    """The labels as stored, or UsageError naming every row (1-based, as read_labels counts) whose
    label the model cannot have."""
    text = table_format(path) != "parquet"  # CSV has no types: "1" may stand for the class 1
    labels, problems = [], []
    for line, (request_id, label) in enumerate(zip(frame["request_id"], frame["label"].tolist(), strict=True)):
        try:
            labels.append(check_label(label, classes, text=text))
        except ValueError as error:
            problems.append(f"row {line + 1} (request {request_id}): {error}")
    if problems:
        more = f" and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise UsageError(
            f"{path}: {len(problems)} labels the model cannot have, nothing recorded: "
            + "; ".join(problems[:SHOWN])
            + more
        )
    return labels


def model_classes(path: Path) -> list | None:
    """The classes of the ONNX model `export` wrote (None: regression), from its metadata."""
    import onnxruntime as ort

    from ...serving import contract

    if not path.is_file():
        raise UsageError(
            f"{path}: model file not found; labels are checked against the served model's classes: pass "
            "--model with the ONNX file the server runs (or run the pipeline's export stage)"
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    if contract.SCHEMA not in metadata:
        raise UsageError(f"{path}: no '{contract.SCHEMA}' metadata; pass the ONNX file `export` wrote")
    schema = json.loads(metadata[contract.SCHEMA])
    return None if schema.get("task") == "regression" else list(schema.get("classes", []))


def read_labels(path: Path, classes: list | None | Unchecked = UNCHECKED) -> dict[str, list[Any]]:
    """request id -> its labels in row order, from the file; UsageError naming what is wrong. With
    `classes` (None: regression), each label is checked as /feedback checks it."""
    if not path.is_file():
        raise UsageError(f"{path}: labels file not found")
    try:
        frame = (
            pd.read_parquet(path) if table_format(path) == "parquet" else pd.read_csv(path, dtype={"request_id": str})
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as error:
        raise UsageError(f"{path}: not a readable labels file: {error}") from error
    columns = set(frame.columns)
    if columns not in ({"request_id", "label"}, {"request_id", "row_index", "label"}):
        raise UsageError(f"{path}: columns {sorted(columns)}; expected request_id,row_index,label or request_id,label")
    for name in frame.columns:
        missing = frame[name].isna()
        if missing.any():
            line = int(missing.to_numpy().argmax())
            raise UsageError(f"{path}: row {line + 1}: no {name}; every row needs one")
    if not isinstance(classes, Unchecked):
        frame["label"] = checked(path, frame, classes)
    labels: dict[str, list[Any]] = {}
    if "row_index" not in columns:
        for request_id, label in zip(frame["request_id"].astype(str), frame["label"].tolist(), strict=True):
            labels.setdefault(request_id, []).append(label)
        return labels
    problems = []
    for request_id, rows in frame.groupby(frame["request_id"].astype(str), sort=False):
        rows = rows.sort_values("row_index")
        if rows["row_index"].tolist() != list(range(len(rows))):
            problems.append(f"{request_id} (row_index {rows['row_index'].tolist()[:8]}, expected 0 to {len(rows) - 1})")
            continue
        labels[str(request_id)] = rows["label"].tolist()
    if problems:
        raise UsageError(
            f"{path}: each request's row_index must run 0, 1, 2... once each: {'; '.join(problems[:SHOWN])}"
        )
    return labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="CSV or Parquet: request_id,row_index,label (or request_id,label)")
    parser.add_argument(
        "--url", help=f"the prediction log's PostgreSQL URL (default ${prediction_log.DATABASE_URL_ENV})"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=Path(os.environ.get("MODEL_PATH") or DEFAULT_MODEL),
        help=f"the served ONNX file, whose classes the labels must be (default $MODEL_PATH or {DEFAULT_MODEL})",
    )


def run(args: argparse.Namespace) -> None:
    url = args.url or os.environ.get(prediction_log.DATABASE_URL_ENV, "")
    if not url:
        raise UsageError(f"no prediction log: set {prediction_log.DATABASE_URL_ENV} or pass --url")
    labels = read_labels(args.file, model_classes(args.model))
    try:
        connection = prediction_log.connect(url)
    except prediction_log.LogError as error:
        raise UsageError(str(error)) from error
    unknown: list[str] = []
    mismatched: list[str] = []
    final: list[str] = []
    rows = 0
    with connection:
        for request_id, values in labels.items():
            try:
                rows += prediction_log.add_labels(connection, request_id, values, "import")
            except LookupError:
                unknown.append(request_id)
            except ValueError as error:
                mismatched.append(str(error))
            except prediction_log.AlreadyLabelled:
                final.append(request_id)
    done = len(labels) - len(unknown) - len(mismatched) - len(final)
    log.info("labelled %d rows of %d requests from %s", rows, done, args.file)
    problems = []
    if unknown:
        listed = ", ".join(unknown[:SHOWN]) + (f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else "")
        problems.append(f"{len(unknown)} requests not in the log (not sampled, or unknown ids): {listed}")
    if mismatched:
        problems.append(f"{len(mismatched)} requests with another number of rows: {'; '.join(mismatched[:SHOWN])}")
    if final:
        listed = ", ".join(final[:SHOWN]) + (f" and {len(final) - SHOWN} more" if len(final) > SHOWN else "")
        problems.append(f"{len(final)} requests labelled already (a label is final): {listed}")
    if problems:
        raise CheckFailed(f"{args.file}: " + ". ".join(problems) + "; the other requests are labelled")


COMMANDS = {"import-labels": ("record true labels for logged requests from a CSV or Parquet file", add_arguments, run)}
