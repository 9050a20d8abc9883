"""Which metrics are better lower: what the gate's no-regression check and tune's search direction follow."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.tabular.pure import metrics

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
