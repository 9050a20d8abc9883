"""Fairlearn audit of the held-out predictions, per sensitive feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn import metrics as fl
from sklearn import metrics as sk

from ..config import Task
from .predictions import Predictions

MISSING_GROUP = "(missing)"


def _group_metrics(task: Task, classes: list) -> dict:
    if task == "binary":
        positive = classes[1]
        return {
            "selection_rate": lambda t, p: fl.selection_rate(t, p, pos_label=positive),
            "true_positive_rate": lambda t, p: fl.true_positive_rate(t, p, pos_label=positive),
            "false_positive_rate": lambda t, p: fl.false_positive_rate(t, p, pos_label=positive),
            "accuracy": sk.accuracy_score,
        }
    if task == "multiclass":
        return {"accuracy": sk.accuracy_score, "f1_macro": lambda t, p: sk.f1_score(t, p, average="macro")}
    return {"mae": sk.mean_absolute_error, "mean_prediction": lambda t, p: float(np.mean(p))}


def audit(
    task: Task, y_true: pd.Series, predicted: Predictions, groups: pd.DataFrame, classes: list
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Scalar metrics named `<feature>.<metric>` and the by-group table of each feature."""
    scalars: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}
    y_true = np.asarray(y_true)
    for feature in groups.columns:
        # Rows with no recorded group are audited as a group of their own, not dropped.
        members = groups[feature].astype(str).where(groups[feature].notna(), MISSING_GROUP)
        frame = fl.MetricFrame(
            metrics=_group_metrics(task, classes),
            y_true=y_true,
            y_pred=predicted.point,
            sensitive_features=members,
        )
        tables[feature] = frame.by_group
        for name, value in frame.difference(method="between_groups").items():
            scalars[f"{feature}.{name}_difference"] = float(value)
        if task == "binary":
            # The difference metrics take 0/1 outcomes; labels may be any two values.
            is_positive = y_true == classes[1], np.asarray(predicted.point) == classes[1]
            scalars[f"{feature}.demographic_parity_difference"] = float(
                fl.demographic_parity_difference(*is_positive, sensitive_features=members)
            )
            scalars[f"{feature}.equalized_odds_difference"] = float(
                fl.equalized_odds_difference(*is_positive, sensitive_features=members)
            )
    return scalars, tables
