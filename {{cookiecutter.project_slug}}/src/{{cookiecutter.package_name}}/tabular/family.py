"""The tabular family: tables in, a classifier or regressor out (binary, multiclass, regression)."""

from __future__ import annotations

from ..family import Family
from . import gate_checks
from .config import Config, overrides
from .dataio.smoke import smoke_rows
from .stages import PIPELINE


def lower_is_better(metric: str) -> bool:
    """gate's no-regression direction of a metric (pure/metrics.py; scikit-learn is imported when gate runs)."""
    from .pure import metrics

    return metrics.lower_is_better(metric)


FAMILY = Family(
    name="tabular",
    config=Config,
    pipeline=PIPELINE,
    overrides=overrides,
    gate_checks=(gate_checks.privacy, gate_checks.importance),
    commands=(
        "tabular.commands.sample_data",
        "tabular.commands.init_config",
        "tabular.commands.import_model",
        "tabular.commands.scoring",
        "tabular.commands.monitoring.command",
        "tabular.commands.encrypted_client",
        "tabular.commands.label_import",
        "tabular.commands.prediction_log_admin",
    ),
    lower_is_better=lower_is_better,
    smoke_rows=smoke_rows,
    noisy_loggers=("great_expectations", "matplotlib"),
)
