"""`import-labels`: true labels for many logged requests at once, from a CSV or Parquet file.

The batch form of POST /feedback. One line per predicted row: `request_id,row_index,label`, where
row_index is the row's place in its request (0 for the first; a one-row request has only 0); or
`request_id,label`, the rows of each request then taken in file order. Each request is labelled
in one transaction, all its rows or none: a request that is not in the log, or whose row indexes do
not cover exactly its logged rows, is listed and skipped (exit 1), the others are still recorded.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .data import table_format
from .errors import CheckFailed, UsageError
from .serving import prediction_log

log = logging.getLogger(__name__)
SHOWN = 10  # problems listed by name; the rest are counted


def read_labels(path: Path) -> dict[str, list[Any]]:
    """request id -> its labels in row order, from the file; UsageError naming what is wrong."""
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


def run(args: argparse.Namespace) -> None:
    url = args.url or os.environ.get(prediction_log.DATABASE_URL_ENV, "")
    if not url:
        raise UsageError(f"no prediction log: set {prediction_log.DATABASE_URL_ENV} or pass --url")
    labels = read_labels(args.file)
    try:
        connection = prediction_log.connect(url)
    except prediction_log.LogError as error:
        raise UsageError(str(error)) from error
    unknown: list[str] = []
    mismatched: list[str] = []
    rows = 0
    with connection:
        for request_id, values in labels.items():
            try:
                rows += prediction_log.add_labels(connection, request_id, values)
            except LookupError:
                unknown.append(request_id)
            except ValueError as error:
                mismatched.append(str(error))
    log.info("labelled %d rows of %d requests from %s", rows, len(labels) - len(unknown) - len(mismatched), args.file)
    problems = []
    if unknown:
        listed = ", ".join(unknown[:SHOWN]) + (f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else "")
        problems.append(f"{len(unknown)} requests not in the log (not sampled, or unknown ids): {listed}")
    if mismatched:
        problems.append(f"{len(mismatched)} requests with another number of rows: {'; '.join(mismatched[:SHOWN])}")
    if problems:
        raise CheckFailed(f"{args.file}: " + ". ".join(problems) + "; the other requests are labelled")


COMMANDS = {"import-labels": ("record true labels for logged requests from a CSV or Parquet file", add_arguments, run)}
