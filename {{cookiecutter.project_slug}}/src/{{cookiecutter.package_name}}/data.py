"""Reading the table, deciding what each column is, and splitting it the same way in every stage."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .config import Column, Config, Task
from .errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schema:
    """What the model sees: feature columns and their kinds, the target, the groups to audit."""

    task: Task
    target: str
    columns: dict[str, Column]  # features only, in model input order
    sensitive: list[str]

    @property
    def features(self) -> list[str]:
        return list(self.columns)

    @property
    def numeric(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.type == "number"]

    @property
    def categorical(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.type == "string"]

    def as_dict(self) -> dict:
        """The JSON form carried inside the ONNX file and logged with the run."""
        return {
            "task": self.task,
            "target": self.target,
            "features": [
                {"name": name, "type": column.type, **({"categories": column.values} if column.values else {})}
                for name, column in self.columns.items()
            ],
        }


def read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"{path}: data file not found (set data.path in config.yaml or pass --data)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise UsageError(f"{path}: not a readable CSV file: {error}") from error
    if frame.empty:
        raise UsageError(f"{path}: the file has no rows")
    return frame


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def infer_column(series: pd.Series) -> Column:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return Column(type="number")
    return Column(type="string", values=sorted(series.dropna().astype(str).unique().tolist()))


def schema(config: Config, frame: pd.DataFrame) -> Schema:
    """Resolve the configured (or inferred) columns against the table actually read."""
    target = config.data.target
    if target not in frame.columns:
        raise UsageError(
            f"data.target: column {target!r} is not in {config.data_path.name} (columns: {', '.join(frame.columns)})"
        )
    features = config.data.features or [c for c in frame.columns if c != target]
    if target in features:
        raise UsageError(f"data.features: the target {target!r} cannot also be a feature")
    declared = config.data.columns
    unknown = [name for name in features if name not in declared and name not in frame.columns]
    if unknown:
        raise UsageError(
            f"data.features: {', '.join(unknown)} not in {config.data_path.name} and not declared under data.columns"
        )
    # A declared column missing from the file is left for validation to report with the others.
    columns = {name: declared.get(name) or infer_column(frame[name]) for name in features}
    sensitive = [name for name in config.data.sensitive_features if name in frame.columns]
    for dropped in sorted(set(config.data.sensitive_features) - set(sensitive)):
        log.warning("sensitive feature %r is not in the data: no fairness metrics for it", dropped)
    return Schema(task=config.task, target=target, columns=columns, sensitive=sensitive)


def features(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Model inputs with the dtypes the ONNX graph takes, so native and ONNX see the same numbers.

    Numbers become float32 *before* training: tree splits learnt on float64 values can land between
    two float32 values and flip in the exported model.
    """
    out = {}
    for name in schema.features:
        if name in schema.numeric:
            out[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float32)
        else:
            out[name] = frame[name].astype("str").where(frame[name].notna(), "missing")
    return pd.DataFrame(out, index=frame.index)


def target(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    values = frame[schema.target]
    return values.astype(np.float32) if schema.task == "regression" else values


@dataclass(frozen=True)
class Partition:
    """Training rows and held-out test rows (config.Split says how they are drawn)."""

    train: pd.DataFrame
    test: pd.DataFrame


def split(frame: pd.DataFrame, schema: Schema, test_size: float, seed: int) -> Partition:
    """The same rows land in the test split in every stage and every run with the same seed."""
    stratify = None if schema.task == "regression" else frame[schema.target]
    try:
        train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError as error:
        raise UsageError(f"split.test_size: cannot split {len(frame)} rows: {error}") from error
    return Partition(train=train, test=test)
