"""The family's gate checks (tabular/gate_checks.py): the privacy budget a model spent, and the importance
gate on its explanations (README, "Differential privacy", "Explanations")."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import lineage
from {{ cookiecutter.package_name }}.config import Tracking
from {{ cookiecutter.package_name }}.stages import gate
from {{ cookiecutter.package_name }}.tabular import gate_checks
from {{ cookiecutter.package_name }}.tabular.config import Column, Config, Data, Explain, ImportanceGate, Model
from {{ cookiecutter.package_name }}.tabular.dataio.data import Schema
from {{ cookiecutter.package_name }}.tabular.gate_checks import importance_checks

from unit_configs import group_config

# --- privacy: the budget a model spent ---------------------------------------------------------------


def test_a_model_trained_without_dp_fails_when_the_config_requires_it():
    checks = gate_checks.privacy_checks(group_config(enabled=True), {"test.accuracy": 0.9})
    assert [(c.name, c.passed) for c in checks] == [("privacy.epsilon", False), ("privacy.delta", False)]
    assert all("trained without differential privacy" in c.threshold for c in checks)


@pytest.mark.parametrize(("epsilon", "passed"), [(2.5, True), (3.0, True), (3.25, False)])
def test_spent_epsilon_is_held_to_the_target(epsilon, passed):
    checks = gate_checks.privacy_checks(group_config(enabled=True), {"privacy.epsilon": epsilon, "privacy.delta": 1e-5})
    assert [(c.name, c.passed) for c in checks] == [("privacy.epsilon", passed), ("privacy.delta", True)]
    assert checks[0].threshold == "<= 3 (privacy.target_epsilon, privacy.enabled)"


def test_a_gate_threshold_on_epsilon_replaces_the_target_and_works_without_privacy_on():
    strict = group_config(enabled=True, thresholds={"privacy.epsilon": {"max": 1.0}})
    assert [c.name for c in gate_checks.privacy_checks(strict, {})] == ["privacy.delta"]
    [check] = gate.threshold_checks(strict, {"privacy.epsilon": 2.5}, {})
    assert not check.passed and check.threshold == "<= 1"
    [missing] = gate.threshold_checks(group_config(thresholds={"privacy.epsilon": {"max": 1.0}}), {}, {})
    assert not missing.passed and "trained without differential privacy" in missing.threshold
    assert gate_checks.privacy_checks(group_config(), {}) == []  # privacy off, no threshold: nothing to check


def test_the_report_shows_a_small_delta_in_significant_digits():
    strict = group_config(enabled=True, thresholds={"privacy.epsilon": {"max": 9}})
    [check] = gate_checks.privacy_checks(strict, {"privacy.delta": 1e-5})
    assert "| privacy.delta | 1e-05 |" in gate.render([check], True, "run", None, "units")


def explain_config(**gate) -> Config:
    return Config(
        task="binary",
        data=Data(path=Path("t.csv"), target="y", sensitive_features=["sex", "region"]),
        model=Model(framework="sklearn"),
        explain=Explain(gate=ImportanceGate(**gate)),
        tracking=Tracking(experiment="units", model_name="units"),
    )


SCHEMA = Schema(
    task="binary",
    target="y",
    columns={"income": Column(type="number"), "sex": Column(type="string"), "work-class": Column(type="string")},
    sensitive=["sex", "region"],
)
LOGGED = {"importance.income": 0.5, "importance.sex": 0.3125, "importance.work_class": 0.1875}


def test_no_importance_checks_while_the_gate_is_off():
    assert importance_checks(explain_config(), LOGGED, SCHEMA) == []


@pytest.mark.parametrize(("k", "passed"), [(1, True), (2, False)])
def test_a_sensitive_feature_among_the_top_k_fails(k, passed):
    checks = importance_checks(explain_config(forbidden_top_k=k), LOGGED, SCHEMA)
    sex, region = checks  # region is no model input: nothing to rank, it passes
    assert (sex.value, sex.passed) == (0.3125, passed)
    assert sex.threshold == f"not in the top {k} (ranks 2 of 3)"
    assert region.passed and region.value is None


def test_a_share_bound_reads_the_column_through_its_input_name_and_is_inclusive():
    bounds = {"work-class": 0.1875, "sex": 0.25, "no_such_column": 0.5}
    work_class, sex, unknown = importance_checks(explain_config(max_share=bounds), LOGGED, SCHEMA)
    assert (work_class.value, work_class.passed) == (0.1875, True)
    assert (sex.value, sex.passed) == (0.3125, False)
    assert not unknown.passed and "not a feature column" in unknown.threshold


def test_an_importance_gate_on_a_run_that_was_not_explained_fails_and_says_why():
    (check,) = importance_checks(explain_config(max_share={"sex": 0.5}), {}, SCHEMA)
    assert not check.passed and "run `explain`" in check.threshold
    assert lineage.importance_metric("work_class") == "importance.work_class"


def test_a_share_bound_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="fraction of total importance"):
        ImportanceGate(max_share={"sex": 5})
