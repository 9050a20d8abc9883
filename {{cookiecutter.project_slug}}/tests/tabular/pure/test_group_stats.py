"""OpenDP group statistics: noisy counts per sensitive group, within the privacy budget (README,
"Differential privacy")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.tabular.config import Column
from {{ cookiecutter.package_name }}.tabular.dataio.data import Schema
from {{ cookiecutter.package_name }}.tabular.pure import group_stats

from unit_configs import group_config

# --- OpenDP group statistics --------------------------------------------------------------------------

GROUPS = {"group": Column(type="string", values=["a", "b"]), "y": Column(type="number", values=[0, 1])}
SCHEMA = Schema(task="binary", target="y", columns={"group": Column(type="string")}, sensitive=["group"])


def table() -> pd.DataFrame:
    # a: 300 rows, 30% positive; b: 200 rows, 60% positive; 7 rows of an undeclared group, 3 missing
    groups = ["a"] * 300 + ["b"] * 200 + ["c"] * 7 + [None] * 3
    labels = [1] * 90 + [0] * 210 + [1] * 120 + [0] * 80 + [1] * 10
    return pd.DataFrame({"group": groups, "y": np.asarray(labels, dtype=float)})  # 1.0 counts as the declared 1


def test_group_statistics_are_noisy_counts_near_the_exact_ones_within_the_budget():
    released = group_stats.release(group_config(columns=GROUPS, report_epsilon=2.0), table(), SCHEMA)
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
        group_stats.release(group_config(columns={"y": GROUPS["y"]}, report_epsilon=1.0), table(), SCHEMA)
