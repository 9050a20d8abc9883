"""One shape per kind of prediction, whatever produced it (a native model or the ONNX session)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ClassPredictions:
    """Classification: a class per row and the probability of each class."""

    labels: np.ndarray  # (rows,)
    probabilities: np.ndarray  # (rows, classes), columns in class order

    @property
    def point(self) -> np.ndarray:
        return self.labels


@dataclass(frozen=True)
class ValuePredictions:
    """Regression: a value per row."""

    values: np.ndarray  # (rows,)

    @property
    def point(self) -> np.ndarray:
        return self.values


# Branch with isinstance (or match) where the two differ; `point` is the labels or the values.
Predictions = ClassPredictions | ValuePredictions

# Rows predicted at a time on a large table: the model's intermediate arrays (a one-hot matrix of
# every category, a network's activations) are then this many rows, not the whole table.
CHUNK_ROWS = 100_000


def in_chunks(
    predict: Callable[[pd.DataFrame], Predictions], frame: pd.DataFrame, rows: int = CHUNK_ROWS
) -> Predictions:
    """`predict` applied to `frame` a slice of rows at a time, the results joined in row order."""
    parts = [predict(frame.iloc[start : start + rows]) for start in range(0, max(len(frame), 1), rows)]
    values = [part for part in parts if isinstance(part, ValuePredictions)]
    if len(values) == len(parts):
        return ValuePredictions(np.concatenate([part.values for part in values]))
    classes = [part for part in parts if isinstance(part, ClassPredictions)]
    if len(classes) != len(parts):
        raise TypeError("a model gave both class and value predictions")
    return ClassPredictions(
        np.concatenate([part.labels for part in classes]), np.concatenate([part.probabilities for part in classes])
    )
