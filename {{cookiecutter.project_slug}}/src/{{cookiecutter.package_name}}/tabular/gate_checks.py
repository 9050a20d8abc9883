"""The tabular family's gate checks (registered in family.py; the core's stages/checks.py says the signature)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lineage
from ..stages.checks import Check, Gate, missing_reason
from .config import Config
from .pure import attributions

if TYPE_CHECKING:
    from .dataio.data import Schema


def privacy(gate: Gate) -> list[Check]:
    return privacy_checks(_tabular(gate.config), gate.observed)


def importance(gate: Gate) -> list[Check]:
    config = _tabular(gate.config)
    if not config.explain.gate.forbidden_top_k and not config.explain.gate.max_share:
        return []  # off: the run's schema is not read
    from .stages.context import run_schema  # MLflow: imported when the check has work to do

    return importance_checks(config, gate.observed, run_schema(config, gate.run_id))


def _tabular(config: object) -> Config:
    if not isinstance(config, Config):
        raise TypeError(f"a tabular gate check got a {type(config).__name__}, not the tabular Config")
    return config


def privacy_checks(config: Config, observed: dict[str, float]) -> list[Check]:
    """With privacy.enabled, the model must have been trained with DP-SGD within the config's budget.

    Explicit gate.thresholds on the same metric replace these (they may be stricter).
    """
    if not config.privacy.enabled:
        return []
    required = {
        lineage.PRIVACY_EPSILON: config.privacy.target_epsilon,
        lineage.PRIVACY_DELTA: config.privacy.target_delta,
    }
    checks = []
    for name, limit in required.items():
        if name in config.gate.thresholds:
            continue
        value = observed.get(name)
        text = f"<= {limit:g} (privacy.target_{name.removeprefix('privacy.')}, privacy.enabled)"
        passed = value is not None and value <= limit
        checks.append(Check(name, value, text if value is not None else f"{text} ({missing_reason(name)})", passed))
    return checks


def importance_checks(config: Config, observed: dict[str, float], schema: Schema) -> list[Check]:
    """gate's checks on the logged importance shares (config.yaml's explain.gate); none when it is off."""
    bounds = config.explain.gate
    if not bounds.forbidden_top_k and not bounds.max_share:
        return []
    shares = {
        column: observed.get(lineage.importance_metric(input_name)) for column, input_name in schema.inputs.items()
    }
    known = {column: share for column, share in shares.items() if share is not None}
    missing = "(not logged by this run: run `explain` before `gate`)"
    checks = []
    if bounds.forbidden_top_k:
        k = bounds.forbidden_top_k
        order = attributions.ranked(known)
        for column in config.data.sensitive_features:
            if column not in schema.columns:
                checks.append(
                    Check(f"importance rank of {column}", None, f"not in the top {k} (not a model input)", True)
                )
            elif column not in known:
                checks.append(Check(f"importance share of {column}", None, f"not in the top {k} {missing}", False))
            else:
                rank = order.index(column) + 1
                checks.append(
                    Check(
                        f"importance share of {column}",
                        known[column],
                        f"not in the top {k} (ranks {rank} of {len(order)})",
                        rank > k,
                    )
                )
    for column, bound in bounds.max_share.items():
        if column not in schema.columns:
            text = f"<= {bound:g} (not a feature column of this run: fix explain.gate.max_share)"
            checks.append(Check(f"importance share of {column}", None, text, False))
        else:
            share = known.get(column)
            text = f"<= {bound:g}" + ("" if share is not None else f" {missing}")
            checks.append(Check(f"importance share of {column}", share, text, share is not None and share <= bound))
    return checks
