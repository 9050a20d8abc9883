"""The monitor's statistics on distributions whose answers can be worked out by hand, and its window."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.tabular.commands.monitoring import drift, window


def test_psi_of_known_shares():
    # (0.3 - 0.5) ln(0.3 / 0.5) + (0.7 - 0.5) ln(0.7 / 0.5) = 0.1022 + 0.0673
    assert drift.psi(np.array([0.5, 0.5]), np.array([0.3, 0.7])) == pytest.approx(0.16946, abs=1e-5)
    assert drift.psi(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == 0.0
    # An empty bin counts as the floor share, so a new category gives a large, finite index.
    assert 0.5 < drift.psi(np.array([1.0, 0.0]), np.array([0.5, 0.5])) < math.inf


def test_ks_and_chi_square_of_known_samples():
    # Two samples of four, shifted by two: the largest gap between their step functions is 0.5.
    found = drift.number("x", pd.Series([1.0, 2, 3, 4]), pd.Series([3.0, 4, 5, 6]), bins=2, psi_max=0.2, p_value=0.01)
    assert found.test == "ks" and found.statistic == pytest.approx(0.5)
    # 2x2 table [[50, 50], [30, 70]]: expected 40/60 per row, chi2 = 2 * (100/40 + 100/60) = 8.333
    statistic, p = drift.chi_square(np.array([50, 50]), np.array([30, 70]))
    assert statistic == pytest.approx(25 / 3) and p == pytest.approx(0.00389, abs=1e-5)
    assert drift.chi_square(np.array([10]), np.array([5])) == (0.0, 1.0)  # one category: nothing moved


def test_a_column_drifts_only_when_the_move_is_large_and_not_chance():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(50, 10, 2000))
    same = drift.number("income", reference, pd.Series(rng.normal(50, 10, 2000)), 10, 0.2, 0.01)
    moved = drift.number("income", reference, pd.Series(rng.normal(65, 10, 2000)), 10, 0.2, 0.01)
    assert not same.drifted and same.psi < 0.05 and same.p_value > 0.01
    assert moved.drifted and moved.psi > 0.2 and moved.p_value < 1e-10
    # Five rows can move the shares a lot by chance: a large PSI alone is not drift.
    few = drift.category("sex", pd.Series(["f", "m"] * 500), pd.Series(["f", "f", "f", "f", "m"]), 0.2, 0.01)
    assert few.psi > 0.2 and few.p_value > 0.01 and not few.drifted
    # A missing value is a category of its own.
    assert drift.category_counts(pd.Series(["a", None]), pd.Series(["a"]))[0].tolist() == [1, 1]


def test_the_window_from_the_command_line():
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert window.parse(None, None, None, now) == window.Window(now - timedelta(days=7), now)
    assert window.parse("12h", None, None, now).since == now - timedelta(hours=12)
    assert window.parse("2w", None, None, now).since == now - timedelta(weeks=2)
    span = window.parse(None, "2026-11-01", "2026-11-02T06:30", now)
    assert span == window.Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, 6, 30, tzinfo=UTC))
    assert window.parse(None, "2026-11-01T00:00+01:00", None, now).since == datetime(2026, 10, 31, 23, tzinfo=UTC)
    for last, since, until, message in [
        ("7", None, None, "give a positive number and a unit"),
        ("0d", None, None, "give a positive number and a unit"),
        ("7d", "2026-11-01", None, "not both"),
        (None, "yesterday", None, "--since 'yesterday': give an ISO date"),
        (None, "2026-11-02", "2026-11-01", "the window is empty"),
    ]:
        with pytest.raises(UsageError, match=message):
            window.parse(last, since, until, now)


def test_the_reference_store_survives_connecting_to_the_tracking_store(workspace, monkeypatch, tmp_path, empty_store):
    """A run kept in the embedded store still reads the team's registry (a branch's gate, the monitor
    job): MLflow's set_registry_uri exports $MLFLOW_REGISTRY_URI, which must not replace the caller's."""
    import shutil

    import mlflow

    from {{ cookiecutter.package_name }} import tracking
    from {{ cookiecutter.package_name }}.tabular import config as configuration

    shutil.copy(empty_store, tmp_path / "team.db")  # the team's registry exists: a client would make it otherwise
    team = f"sqlite:///{tmp_path / 'team.db'}"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", team)
    settings = configuration.load(workspace.config)
    tracking.connect(settings)
    assert tracking.reference_client(settings)._registry_uri == team
    assert mlflow.get_registry_uri() == tracking.embedded_uri(settings)  # what this run registers into
