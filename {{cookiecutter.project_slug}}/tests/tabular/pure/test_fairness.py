"""The Fairlearn audit per sensitive feature, on rows whose by-group rates are worked out by hand: each
metric's largest gap between groups, the parity differences of a binary task, and rows without a group
audited as a group of their own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.tabular.pure import fairness
from {{ cookiecutter.package_name }}.tabular.pure.predictions import ClassPredictions, ValuePredictions

# Group a: every row predicted "yes" (2 of 4 truly yes); group b: none predicted "yes" (2 of 4 truly yes).
TRUTH = pd.Series(["yes", "no", "yes", "no", "yes", "no", "yes", "no"])
LABELS = np.array(["yes"] * 4 + ["no"] * 4)
GROUPS = pd.DataFrame({"region": ["a"] * 4 + ["b"] * 4})


def classified(labels: np.ndarray) -> ClassPredictions:
    positive = (labels == "yes").astype(float)
    return ClassPredictions(labels, np.column_stack([1 - positive, positive]))


def test_binary_gaps_between_groups_are_named_by_feature_and_metric():
    scalars, tables = fairness.audit("binary", TRUTH, classified(LABELS), GROUPS, ["no", "yes"])
    assert scalars["region.selection_rate_difference"] == 1.0
    assert scalars["region.true_positive_rate_difference"] == 1.0
    assert scalars["region.false_positive_rate_difference"] == 1.0
    assert scalars["region.accuracy_difference"] == 0.0  # both groups are right on half their rows
    assert scalars["region.demographic_parity_difference"] == 1.0
    assert scalars["region.equalized_odds_difference"] == 1.0
    assert tables["region"].loc["a", "selection_rate"] == 1.0 and tables["region"].loc["b", "selection_rate"] == 0.0


def test_equal_treatment_has_no_gap():
    same = np.array(["yes", "no"] * 4)
    scalars, _ = fairness.audit("binary", TRUTH, classified(same), GROUPS, ["no", "yes"])
    assert scalars["region.demographic_parity_difference"] == 0.0
    assert scalars["region.accuracy_difference"] == 0.0


def test_rows_without_a_group_are_audited_as_their_own_group():
    groups = pd.DataFrame({"region": ["a", "a", "a", "a", "b", "b", None, None]})
    _, tables = fairness.audit("binary", TRUTH, classified(LABELS), groups, ["no", "yes"])
    assert sorted(tables["region"].index) == sorted([fairness.MISSING_GROUP, "a", "b"])


def test_regression_gaps_are_of_mean_error_and_mean_prediction():
    truth = pd.Series([1.0, 2.0, 3.0, 4.0])
    predicted = ValuePredictions(np.array([1.0, 2.0, 4.0, 6.0]))
    groups = pd.DataFrame({"region": ["a", "a", "b", "b"]})
    scalars, _ = fairness.audit("regression", truth, predicted, groups, [])
    assert scalars == {
        "region.mae_difference": pytest.approx(1.5),  # a: 0, b: (1 + 2) / 2
        "region.mean_prediction_difference": pytest.approx(3.5),  # a: 1.5, b: 5
    }
