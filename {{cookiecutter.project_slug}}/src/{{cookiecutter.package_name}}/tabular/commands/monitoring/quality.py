"""Task metrics and Fairlearn metrics on the window's labelled rows, held to the gate's own thresholds.

The metrics are computed by the same functions and named as `evaluate` names them (`test.<metric>`,
`fairness.<feature>.<metric>`), so `gate.thresholds` applies unchanged: what was required before
release is what is required in service.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ....stages.checks import Check, threshold_checks
from ...config import Config
from ...dataio import data
from ...pure import fairness, metrics
from ...pure.predictions import ClassPredictions, Predictions, ValuePredictions
from . import window
from .reference import Reference


def logged_predictions(rows: pd.DataFrame, task: str) -> Predictions:
    """The predictions as the model answered them (probabilities in class order, as logged)."""
    if task == "regression":
        return ValuePredictions(rows["prediction"].astype(float).to_numpy())
    return ClassPredictions(
        data.labels(pd.Series(list(rows["prediction"]))).to_numpy(),
        np.array([list(p) for p in rows["probabilities"]], dtype=float),
    )


def measure(rows: pd.DataFrame, reference: Reference) -> dict[str, float]:
    """`test.*` and `fairness.*` on labelled rows that carry everything the metrics need."""
    schema = reference.schema
    if schema.task != "regression":
        rows = rows[rows["probabilities"].notna()]
    y_true = pd.Series(list(rows["label"]), index=rows.index)
    y_true = y_true.astype(float) if schema.task == "regression" else data.labels(y_true)
    predicted = logged_predictions(rows, schema.task)
    observed = {
        f"test.{name}": value
        for name, value in metrics.compute(schema.task, y_true.to_numpy(), predicted, reference.classes).items()
    }
    inputs = window.inputs(rows)
    groups = inputs[[name for name in schema.sensitive if name in inputs.columns]]
    audit, _ = fairness.audit(schema.task, y_true, predicted, groups, reference.classes)
    return observed | {f"fairness.{name}": value for name, value in audit.items()}


def checks(config: Config, observed: dict[str, float]) -> tuple[list[Check], list[str]]:
    """The gate's threshold checks on what could be measured, and the thresholds that could not be
    (a sensitive feature the model does not take is not in the log)."""
    measured = [check for check in threshold_checks(config, observed, {}) if check.value is not None]
    return measured, [name for name in config.gate.thresholds if name not in observed]
