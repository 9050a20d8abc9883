"""Differential privacy: the step of a training run that records what the run promises (config.yaml's
`privacy` section) and releases the DP group statistics of its training rows.

DP-SGD itself is how a framework trains (Framework.train_private; PyTorch's wraps its layers with
dp_sgd.py, which logs the epsilon spent); the gate holds that epsilon to privacy.target_epsilon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import lineage
from ..pure import group_stats

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Config, Privacy
    from ..dataio.data import Schema


def group_statistics(config: Config, rows: pd.DataFrame, schema: Schema) -> dict[str, Any] | None:
    """The noisy group counts of the training `rows` (group_stats.py) when privacy.report_epsilon is set,
    else None. Computed before the run starts: statistics that cannot be released record no run."""
    if config.privacy.report_epsilon is None:
        return None
    return group_stats.release(config, rows, schema)


def params(privacy: Privacy) -> dict[str, object]:
    """`privacy.enabled` on every run, so the gate and the model card can tell a run trained without DP;
    the DP-SGD settings when it is on, and the statistics' budget when they are released."""
    return {
        lineage.PRIVACY_ENABLED: privacy.enabled,
        **(
            {
                "privacy.target_epsilon": privacy.target_epsilon,
                "privacy.target_delta": privacy.target_delta,
                "privacy.max_grad_norm": privacy.max_grad_norm,
            }
            if privacy.enabled
            else {}
        ),
        **({"privacy.report_epsilon": privacy.report_epsilon} if privacy.report_epsilon is not None else {}),
    }


def log_group_statistics(released: dict[str, Any] | None) -> None:
    """The released statistics as the active run's artifact (privacy/group_stats.json); nothing when None."""
    if released is None:
        return
    import mlflow

    mlflow.log_dict(released, lineage.GROUP_STATS_ARTIFACT)
