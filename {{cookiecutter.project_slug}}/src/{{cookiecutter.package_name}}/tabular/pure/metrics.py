"""Task metrics on held-out rows; names are what the gate's thresholds refer to."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as sk

from ..config import Task
from .predictions import Predictions, ValuePredictions

# Everything else is better when higher; fairness differences are better when lower.
LOWER_IS_BETTER = {"log_loss", "rmse", "mae", "brier_score"}


def lower_is_better(key: str) -> bool:
    name = key.rsplit(".", 1)[-1]
    return name in LOWER_IS_BETTER or name.endswith("difference")


def compute(task: Task, y_true: np.ndarray, predicted: Predictions, classes: list) -> dict[str, float]:
    if isinstance(predicted, ValuePredictions):
        values = predicted.values
        return {
            "rmse": float(np.sqrt(sk.mean_squared_error(y_true, values))),
            "mae": float(sk.mean_absolute_error(y_true, values)),
            "r2": float(sk.r2_score(y_true, values)),
        }
    labels, probabilities = predicted.labels, predicted.probabilities
    scores = {
        "accuracy": float(sk.accuracy_score(y_true, labels)),
        "balanced_accuracy": float(sk.balanced_accuracy_score(y_true, labels)),
        "log_loss": float(sk.log_loss(y_true, probabilities, labels=classes)),
    }
    if task == "binary":
        positive = classes[1]
        scores |= {
            "roc_auc": float(sk.roc_auc_score(y_true == positive, probabilities[:, 1])),
            "f1": float(sk.f1_score(y_true, labels, pos_label=positive)),
            "precision": float(sk.precision_score(y_true, labels, pos_label=positive, zero_division=0)),
            "recall": float(sk.recall_score(y_true, labels, pos_label=positive)),
        }
    else:
        scores |= {
            "f1_macro": float(sk.f1_score(y_true, labels, average="macro")),
            "roc_auc_ovr": float(sk.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=classes)),
        }
    return scores
