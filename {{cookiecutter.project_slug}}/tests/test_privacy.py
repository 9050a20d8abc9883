"""Differential privacy: the `privacy` config section, the gate's privacy checks, the OpenDP group
statistics{% if cookiecutter.framework == "pytorch" %} and DP-SGD's wrapping of the network{% endif %} (README, "Differential privacy")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }} import config as configuration
from {{ cookiecutter.package_name }} import group_stats
from {{ cookiecutter.package_name }}.config import Column, Config, Data, Gate, Model, Privacy, Threshold, Tracking
from {{ cookiecutter.package_name }}.data import Schema
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.stages import gate

PROJECT = Path(__file__).resolve().parents[1]


def settings(framework="pytorch", thresholds=None, columns=None, **privacy) -> Config:
    return Config(
        task="binary",
        data=Data(path=Path("table.csv"), target="y", sensitive_features=["group"], columns=columns or {}),
        model=Model(framework=framework),
        gate=Gate(thresholds={name: Threshold(**bound) for name, bound in (thresholds or {}).items()}),
        privacy=Privacy(**privacy),
        tracking=Tracking(experiment="units", model_name="units"),
    )


# --- config ----------------------------------------------------------------------------------------


def test_the_shipped_config_has_privacy_off():
    loaded = configuration.load(PROJECT / "config.yaml").privacy
    assert not loaded.enabled and loaded.report_epsilon is None


@pytest.mark.parametrize("framework", ["sklearn", "keras"])
def test_dp_training_on_another_framework_is_refused_naming_the_fix(framework):
    with pytest.raises(ValidationError, match=f"pytorch framework only, not {framework}; set privacy.enabled: false"):
        settings(framework=framework, enabled=True)
    assert settings(framework=framework, report_epsilon=1.0).privacy.report_epsilon == 1.0  # every framework


@pytest.mark.parametrize(
    "bad",
    [{"target_epsilon": 0}, {"target_delta": 1.0}, {"max_grad_norm": -1.0}, {"report_epsilon": 0}, {"epsilon": 1}],
)
def test_privacy_settings_out_of_range_or_misspelt_are_refused(bad):
    with pytest.raises(ValidationError):
        settings(**bad)


# --- gate --------------------------------------------------------------------------------------------


def test_a_model_trained_without_dp_fails_when_the_config_requires_it():
    checks = gate.privacy_checks(settings(enabled=True), {"test.accuracy": 0.9})
    assert [(c.name, c.passed) for c in checks] == [("privacy.epsilon", False), ("privacy.delta", False)]
    assert all("trained without differential privacy" in c.threshold for c in checks)


@pytest.mark.parametrize(("epsilon", "passed"), [(2.5, True), (3.0, True), (3.25, False)])
def test_spent_epsilon_is_held_to_the_target(epsilon, passed):
    checks = gate.privacy_checks(settings(enabled=True), {"privacy.epsilon": epsilon, "privacy.delta": 1e-5})
    assert [(c.name, c.passed) for c in checks] == [("privacy.epsilon", passed), ("privacy.delta", True)]
    assert checks[0].threshold == "<= 3 (privacy.target_epsilon, privacy.enabled)"


def test_a_gate_threshold_on_epsilon_replaces_the_target_and_works_without_privacy_on():
    strict = settings(enabled=True, thresholds={"privacy.epsilon": {"max": 1.0}})
    assert [c.name for c in gate.privacy_checks(strict, {})] == ["privacy.delta"]
    [check] = gate.threshold_checks(strict, {"privacy.epsilon": 2.5}, {})
    assert not check.passed and check.threshold == "<= 1"
    [missing] = gate.threshold_checks(settings(thresholds={"privacy.epsilon": {"max": 1.0}}), {}, {})
    assert not missing.passed and "trained without differential privacy" in missing.threshold
    assert gate.privacy_checks(settings(), {}) == []  # privacy off, no threshold: nothing to check


def test_the_report_shows_a_small_delta_in_significant_digits():
    strict = settings(enabled=True, thresholds={"privacy.epsilon": {"max": 9}})
    [check] = gate.privacy_checks(strict, {"privacy.delta": 1e-5})
    assert "| privacy.delta | 1e-05 |" in gate.render([check], True, "run", None, "units")


# --- OpenDP group statistics --------------------------------------------------------------------------

GROUPS = {"group": Column(type="string", values=["a", "b"]), "y": Column(type="number", values=[0, 1])}
SCHEMA = Schema(task="binary", target="y", columns={"group": Column(type="string")}, sensitive=["group"])


def table() -> pd.DataFrame:
    # a: 300 rows, 30% positive; b: 200 rows, 60% positive; 7 rows of an undeclared group, 3 missing
    groups = ["a"] * 300 + ["b"] * 200 + ["c"] * 7 + [None] * 3
    labels = [1] * 90 + [0] * 210 + [1] * 120 + [0] * 80 + [1] * 10
    return pd.DataFrame({"group": groups, "y": np.asarray(labels, dtype=float)})  # 1.0 counts as the declared 1


def test_group_statistics_are_noisy_counts_near_the_exact_ones_within_the_budget():
    released = group_stats.release(settings(columns=GROUPS, report_epsilon=2.0), table(), SCHEMA)
    feature = released["features"]["group"]
    assert released["epsilon"] == feature["epsilon"] == 2.0 and feature["noise_scale"] == pytest.approx(0.5)
    groups = feature["groups"]
    assert set(groups) == {"a", "b", group_stats.OTHER}  # only declared groups: "c" is not named
    exact = {("a", "0"): 210, ("a", "1"): 90, ("b", "0"): 80, ("b", "1"): 120}
    for (group, label), count in exact.items():
        # discrete Laplace of scale 0.5: |noise| > 15 has probability about e^-30
        assert abs(groups[group]["label_counts"][label] - count) <= 15
    assert abs(groups["a"]["label_rates"]["1"] - 0.3) < 0.05 and abs(groups["b"]["label_rates"]["1"] - 0.6) < 0.05
    assert abs(groups[group_stats.OTHER]["rows"] - 10) <= 15


def test_group_statistics_need_declared_values():
    with pytest.raises(UsageError, match=r"data.columns.group.values is not declared"):
        group_stats.release(settings(columns={"y": GROUPS["y"]}, report_epsilon=1.0), table(), SCHEMA)
{%- if cookiecutter.framework == "pytorch" %}


# --- DP-SGD ---------------------------------------------------------------------------------------------


def rows(n: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=generator), torch.randint(0, 2, (n,), generator=generator)


def test_dp_sgd_trains_the_plain_layers_in_place_within_the_budget():
    import torch
    from torch import nn

    from {{ cookiecutter.package_name }}.frameworks.pytorch import Network
    from {{ cookiecutter.package_name }}.tabular.training import dp_sgd

    network = Network(4, 2, [8], 0.1, True)
    before = {name: value.clone() for name, value in network.state_dict().items()}
    x, y = rows(2000)
    private = dp_sgd.wrap(network.body, torch.optim.SGD(network.parameters(), lr=0.1), x, y, Privacy(), 2, 100, 0)
    for _ in range(2):
        for batch_x, batch_y in private.batches():
            private.optimiser.zero_grad()
            nn.functional.cross_entropy(private.layers(batch_x), batch_y).backward()
            private.optimiser.step()
    assert 0 < private.spent() <= Privacy().target_epsilon
    private.layers.to_standard_module()
    assert network.state_dict().keys() == before.keys()  # the logged state dict: plain names, no wrapper
    assert any(not torch.equal(network.state_dict()[name], value) for name, value in before.items())


def test_dp_sgd_refuses_batch_norm_and_a_delta_not_below_one_over_rows():
    import torch
    from torch import nn

    from {{ cookiecutter.package_name }}.tabular.training import dp_sgd

    x, y = rows(500)
    mixing = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    with pytest.raises(UsageError, match="DP-SGD cannot train this network.*BatchNorm"):
        dp_sgd.wrap(mixing, torch.optim.SGD(mixing.parameters(), lr=0.1), x, y, Privacy(), 1, 50, 0)
    plain = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(UsageError, match=r"target_delta: 0.002 is not below 1/500"):
        dp_sgd.wrap(plain, torch.optim.SGD(plain.parameters(), lr=0.1), x, y, Privacy(target_delta=0.002), 1, 50, 0)
{%- endif %}
