"""The gate's threshold and no-regression checks and its report, case by case, with this family's metric
directions (tabular/pure/metrics.py): no MLflow run, no model.

The numbers are chosen exact in binary floating point (0.75, 0.0625, ...), so "exactly at the bound"
means exactly, not within rounding.
"""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.stages import gate
from {{ cookiecutter.package_name }}.tabular.pure import metrics

from unit_configs import gate_config

RUN = "0123456789abcdef0123456789abcdef"
DIGEST = "ab" * 32


# --- gate: thresholds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bound", "value", "passed", "text"),
    [
        ({"min": 0.75}, 0.8125, True, ">= 0.75"),
        ({"min": 0.75}, 0.75, True, ">= 0.75"),  # bounds are inclusive
        ({"min": 0.75}, 0.6875, False, ">= 0.75"),
        ({"max": 0.25}, 0.125, True, "<= 0.25"),
        ({"max": 0.25}, 0.25, True, "<= 0.25"),
        ({"max": 0.25}, 0.375, False, "<= 0.25"),
        ({"min": 0.5, "max": 0.75}, 0.625, True, ">= 0.5 and <= 0.75"),
        ({"min": 0.5, "max": 0.75}, 0.375, False, ">= 0.5 and <= 0.75"),
        ({"min": 0.5, "max": 0.75}, 0.875, False, ">= 0.5 and <= 0.75"),
    ],
)
def test_threshold_bounds(bound, value, passed, text):
    [check] = gate.threshold_checks(gate_config({"test.f1": bound}), {"test.f1": value}, {})
    assert (check.name, check.value, check.passed, check.threshold) == ("test.f1", value, passed, text)
    assert check.champion is None


def test_a_threshold_on_a_metric_the_run_did_not_log_fails_and_says_so():
    [check] = gate.threshold_checks(gate_config({"test.roc_auc": {"min": 0.5}}), {"test.f1": 0.9}, {})
    assert not check.passed and check.value is None
    assert check.threshold == ">= 0.5 (metric not logged by this run)"


def test_threshold_checks_carry_the_champion_value_for_the_report():
    checks = gate.threshold_checks(
        gate_config({"test.f1": {"min": 0.5}, "test.recall": {"min": 0.5}}),
        {"test.f1": 0.75, "test.recall": 0.75},
        {"test.f1": 0.8125},
    )
    assert [(c.name, c.champion) for c in checks] == [("test.f1", 0.8125), ("test.recall", None)]


# --- gate: no regression against the champion ------------------------------------------------------


def test_no_champion_means_no_regression_checks():
    assert gate.regression_checks(gate_config(no_regression=["test.f1"]), {"test.f1": 0.1}, {}) == []


def test_a_metric_the_champion_never_logged_is_not_compared():
    checks = gate.regression_checks(
        gate_config(no_regression=["test.f1", "test.recall"]), {"test.f1": 0.75, "test.recall": 0.1}, {"test.f1": 0.75}
    )
    assert [c.name for c in checks] == ["test.f1 vs champion"]


@pytest.mark.parametrize(
    ("metric", "champion", "value", "passed"),
    [
        # higher is better: at most `tolerance` (0.0625) below the champion
        ("test.f1", 0.75, 0.8125, True),
        ("test.f1", 0.75, 0.75, True),
        ("test.f1", 0.75, 0.6875, True),  # exactly champion - tolerance
        ("test.f1", 0.75, 0.625, False),
        # lower is better: at most `tolerance` above the champion
        ("test.log_loss", 0.5, 0.375, True),
        ("test.log_loss", 0.5, 0.5625, True),  # exactly champion + tolerance
        ("test.log_loss", 0.5, 0.625, False),
        ("fairness.sex.demographic_parity_difference", 0.125, 0.1875, True),
        ("fairness.sex.demographic_parity_difference", 0.125, 0.25, False),
        ("test.rmse", 2.0, 2.0625, True),
        ("test.rmse", 2.0, 2.125, False),
    ],
)
def test_regression_tolerance_and_direction(metric, champion, value, passed):
    [check] = gate.regression_checks(gate_config(no_regression=[metric]), {metric: value}, {metric: champion})
    assert check.passed is passed
    assert (check.value, check.champion) == (value, champion)
    sign = "<=" if metrics.lower_is_better(metric) else ">="
    assert check.threshold.startswith(f"{sign} ") and f"champion {champion:.4g}" in check.threshold


def test_zero_tolerance_admits_an_equal_value_only():
    checks = gate.regression_checks(
        gate_config(no_regression=["test.f1"], tolerance=0.0), {"test.f1": 0.75}, {"test.f1": 0.75}
    )
    assert checks[0].passed
    checks = gate.regression_checks(
        gate_config(no_regression=["test.f1"], tolerance=0.0), {"test.f1": 0.7499}, {"test.f1": 0.75}
    )
    assert not checks[0].passed


def test_a_metric_the_champion_has_but_this_run_lacks_fails():
    [check] = gate.regression_checks(gate_config(no_regression=["test.f1"]), {}, {"test.f1": 0.75})
    assert not check.passed and check.value is None and check.champion == 0.75


# --- gate: the report ------------------------------------------------------------------------------


def test_render_a_failed_gate_with_a_champion():
    checks = [
        gate.Check("test.f1", 0.75, ">= 0.5", True, 0.8),
        gate.Check("test.roc_auc", None, ">= 0.5 (metric not logged by this run)", False),
    ]
    report = gate.render(checks, False, RUN, "3", "credit")
    lines = report.splitlines()
    assert lines[0] == "## Gate: FAILED - credit"
    assert lines[2] == f"Run `{RUN}`; champion: version 3."
    assert lines[-2:] == [
        "| test.f1 | 0.7500 | >= 0.5 | 0.8000 | pass |",
        "| test.roc_auc | n/a | >= 0.5 (metric not logged by this run) | n/a | **FAIL** |",
    ]
    assert report.endswith("\n")


def test_render_a_first_model_without_checks():
    report = gate.render([], True, RUN, None, "credit")
    assert report.startswith("## Gate: PASSED - credit")
    assert "champion: none yet." in report
    assert report.splitlines()[-1] == "|---|---:|---|---:|---|"  # header only
