"""The task metrics on held-out rows, worked out by hand on a few rows, and which metrics are better lower
(what the gate's no-regression check and tune's search direction follow)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.tabular.pure import metrics
from {{ cookiecutter.package_name }}.tabular.pure.predictions import ClassPredictions, ValuePredictions

# --- metric direction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "lower"),
    [
        ("test.log_loss", True),
        ("log_loss", True),
        ("test.rmse", True),
        ("test.mae", True),
        ("test.brier_score", True),
        ("fairness.sex.demographic_parity_difference", True),
        ("fairness.age_group.equalized_odds_difference", True),
        ("test.accuracy", False),
        ("test.roc_auc", False),
        ("test.f1_macro", False),
        ("test.r2", False),
        ("fairness.sex.demographic_parity_ratio", False),
        ("test.log_loss_ratio", False),
    ],
)
def test_lower_is_better(key, lower):
    assert metrics.lower_is_better(key) is lower


# --- metrics on held-out rows ----------------------------------------------------------------------


def test_binary_metrics_take_the_second_class_as_positive_whatever_the_labels():
    truth = np.array(["good", "bad", "good", "bad"])
    positive = np.array([0.75, 0.25, 0.5, 0.125])  # every positive row scored above every negative one
    predicted = ClassPredictions(np.array(["good", "bad", "bad", "bad"]), np.column_stack([1 - positive, positive]))
    scores = metrics.compute("binary", truth, predicted, ["bad", "good"])
    assert scores["accuracy"] == 0.75
    assert scores["balanced_accuracy"] == 0.75  # (1/2 of the positives + 2/2 of the negatives) / 2
    assert (scores["precision"], scores["recall"]) == (1.0, 0.5)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["roc_auc"] == 1.0
    # the mean of -log(the true class's probability): 0.75, 0.75, 0.5 and 0.875
    assert scores["log_loss"] == pytest.approx(-(2 * math.log(0.75) + math.log(0.5) + math.log(0.875)) / 4)


def test_multiclass_metrics_are_macro_and_one_vs_rest():
    truth = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.25, 0.25, 0.5], [0.5, 0.25, 0.25]])
    predicted = ClassPredictions(probabilities.argmax(axis=1), probabilities)
    scores = metrics.compute("multiclass", truth, predicted, [0, 1, 2])
    assert set(scores) == {"accuracy", "balanced_accuracy", "log_loss", "f1_macro", "roc_auc_ovr"}
    assert scores["accuracy"] == 0.75
    assert scores["f1_macro"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)  # class 0: P 1/2 R 1; class 2: P 1 R 1/2


def test_regression_metrics_are_rmse_mae_and_r2():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    scores = metrics.compute("regression", truth, ValuePredictions(np.array([1.0, 2.0, 3.0, 6.0])), [])
    assert scores == {"rmse": 1.0, "mae": 0.5, "r2": pytest.approx(1 - 4 / 5)}
