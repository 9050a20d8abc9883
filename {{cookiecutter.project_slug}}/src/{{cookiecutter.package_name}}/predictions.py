"""One shape per kind of prediction, whatever produced it (a native model or the ONNX session)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
