"""Small configs for the tabular family's unit tests, built in code: one place that knows which fields a unit
test may leave at their defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.config import Gate, Threshold, Tracking
from {{ cookiecutter.package_name }}.tabular.config import Config, Data, Model, Privacy


def gate_config(thresholds=None, no_regression=(), tolerance=0.0625, **data_fields: Any) -> Config:
    """A binary sklearn config whose gate has these thresholds and no-regression metrics."""
    fields = {"path": Path("table.csv"), "target": "y"} | data_fields
    return Config(
        task="binary",
        data=Data(**fields),
        model=Model(framework="sklearn"),
        gate=Gate(
            thresholds={name: Threshold(**bound) for name, bound in (thresholds or {}).items()},
            no_regression=list(no_regression),
            regression_tolerance=tolerance,
        ),
        tracking=Tracking(experiment="units", model_name="units"),
    )


def group_config(framework="pytorch", thresholds=None, columns=None, **privacy: Any) -> Config:
    """A binary config with a sensitive `group` column, these thresholds and these privacy settings."""
    return Config(
        task="binary",
        data=Data(path=Path("table.csv"), target="y", sensitive_features=["group"], columns=columns or {}),
        model=Model(framework=framework),
        gate=Gate(thresholds={name: Threshold(**bound) for name, bound in (thresholds or {}).items()}),
        privacy=Privacy(**privacy),
        tracking=Tracking(experiment="units", model_name="units"),
    )
