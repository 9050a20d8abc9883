"""gate's checks: one signature (GateCheck: a Gate in, Checks out), one registry. The core's (thresholds,
no-regression: stages/gate.py's CORE) come first, then the ones the project's family registers
(family.Family.gate_checks); `gate` sums them all. Light on purpose: monitoring reuses the thresholds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import family as families
from .. import lineage
from ..config import Config


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    threshold: str
    passed: bool
    champion: float | None = None


@dataclass(frozen=True)
class Gate:
    """What a check judges: the run's logged metrics against the config and the champion's."""

    config: Config
    run_id: str
    observed: dict[str, float]
    champion: dict[str, float]  # empty: no champion yet
    lower_is_better: Callable[[str], bool]  # the family's direction of a metric


GateCheck = Callable[[Gate], list[Check]]


def threshold_checks(config: Config, observed: dict[str, float], champion: dict[str, float]) -> list[Check]:
    """gate.thresholds: each bound on a logged metric (monitoring applies the same to a window of traffic)."""
    checks = []
    for name, bound in config.gate.thresholds.items():
        value = observed.get(name)
        passed = (
            value is not None
            and (bound.min is None or value >= bound.min)
            and (bound.max is None or value <= bound.max)
        )
        text = " and ".join(
            part
            for part in (
                f">= {bound.min:g}" if bound.min is not None else "",
                f"<= {bound.max:g}" if bound.max is not None else "",
            )
            if part
        )
        checks.append(
            Check(
                name,
                value,
                text if value is not None else f"{text} ({missing_reason(name)})",
                passed,
                champion.get(name),
            )
        )
    return checks


def missing_reason(name: str) -> str:
    if name in (lineage.PRIVACY_EPSILON, lineage.PRIVACY_DELTA):
        return "not logged: this run was trained without differential privacy (privacy.enabled: false)"
    return "metric not logged by this run"


def regression_checks(
    config: Config,
    observed: dict[str, float],
    champion: dict[str, float],
    lower_is_better: Callable[[str], bool] | None = None,
) -> list[Check]:
    """gate.no_regression: each named metric no worse than the champion's, within gate.regression_tolerance;
    `lower_is_better` says a metric's direction (default: this project's family's)."""
    direction = lower_is_better or families.current().lower_is_better
    if not champion:
        return []
    tolerance = config.gate.regression_tolerance
    checks = []
    for name in config.gate.no_regression:
        value, best = observed.get(name), champion.get(name)
        if best is None:
            continue  # the champion predates this metric: nothing to compare
        if lower := direction(name):
            limit, passed = best + tolerance, value is not None and value <= best + tolerance
        else:
            limit, passed = best - tolerance, value is not None and value >= best - tolerance
        checks.append(
            Check(
                f"{name} vs champion",
                value,
                f"{'<=' if lower else '>='} {limit:.4g} (champion {best:.4g} {'+' if lower else '-'} {tolerance:g})",
                passed,
                best,
            )
        )
    return checks
