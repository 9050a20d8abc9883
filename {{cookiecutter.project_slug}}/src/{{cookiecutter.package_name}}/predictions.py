"""One shape for predictions, whatever produced them (a native model or the ONNX session)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray | None = None         # classification: class per row
    probabilities: np.ndarray | None = None  # classification: (rows, classes), columns in class order
    values: np.ndarray | None = None         # regression: value per row

    @property
    def point(self) -> np.ndarray:
        """Labels for classification, values for regression."""
        return self.values if self.labels is None else self.labels
