"""gate: every configured threshold and the no-regression check against `champion`.

The gate only judges: a passing model is registered later, by `register`, once its ONNX export has
also passed the parity check (stages/register.py).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .. import lineage, metrics, tracking
from ..config import Config
from ..errors import CheckFailed
from . import StageResult
from .context import attach
{%- if cookiecutter.task != "reinforcement" %}
from .explain import importance_checks
{%- endif %}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    threshold: str
    passed: bool
    champion: float | None = None


@dataclass(frozen=True)
class Verdict(StageResult):
    run_id: str
    passed: bool
    checks: list[Check]
    model_name: str
    report: str


def threshold_checks(config: Config, observed: dict[str, float], champion: dict[str, float]) -> list[Check]:
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
            Check(name, value, text if value is not None else f"{text} ({_missing(name)})", passed, champion.get(name))
        )
    return checks


def _missing(name: str) -> str:
    if name in (lineage.PRIVACY_EPSILON, lineage.PRIVACY_DELTA):
        return "not logged: this run was trained without differential privacy (privacy.enabled: false)"
    return "metric not logged by this run"

{%- if cookiecutter.task != "reinforcement" %}


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
        checks.append(Check(name, value, text if value is not None else f"{text} ({_missing(name)})", passed))
    return checks
{%- endif %}


def regression_checks(config: Config, observed: dict[str, float], champion: dict[str, float]) -> list[Check]:
    if not champion:
        return []
    tolerance = config.gate.regression_tolerance
    checks = []
    for name in config.gate.no_regression:
        value, best = observed.get(name), champion.get(name)
        if best is None:
            continue  # the champion predates this metric: nothing to compare
        if lower_is_better := metrics.lower_is_better(name):
            limit, passed = best + tolerance, value is not None and value <= best + tolerance
        else:
            limit, passed = best - tolerance, value is not None and value >= best - tolerance
        checks.append(
            Check(
                f"{name} vs champion",
                value,
                f"{'<=' if lower_is_better else '>='} {limit:.4g} "
                f"(champion {best:.4g} {'+' if lower_is_better else '-'} {tolerance:g})",
                passed,
                best,
            )
        )
    return checks


def champion_metrics(client: MlflowClient, model_name: str) -> tuple[str | None, dict[str, float]]:
    try:
        version = client.get_model_version_by_alias(model_name, lineage.CHAMPION)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None, {}  # no registered model or no champion yet: the project's first model
        raise
    run_id = str(version.tags.get(lineage.RUN_ID) or version.run_id)
    return str(version.version), client.get_run(run_id).data.metrics


def render(checks: list[Check], passed: bool, run_id: str, champion_version: str | None, model_name: str) -> str:
    def number(value: float | None) -> str:
        if value is None:
            return "n/a"
        # A value too small for four decimals (privacy.delta, 1e-05) in significant digits, not as 0.0000.
        return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.3g}"

    lines = [
        f"## Gate: {'PASSED' if passed else 'FAILED'} - {model_name}",
        "",
        f"Run `{run_id}`; champion: {'version ' + champion_version if champion_version else 'none yet'}.",
        "",
        "| check | value | threshold | champion | result |",
        "|---|---:|---|---:|---|",
    ]
    lines += [
        f"| {c.name} | {number(c.value)} | {c.threshold} | {number(c.champion)} | "
        f"{'pass' if c.passed else '**FAIL**'} |"
        for c in checks
    ]
    return "\n".join(lines) + "\n"


def publish(config: Config, verdict: Verdict) -> Path:
    config.outputs.mkdir(parents=True, exist_ok=True)
    report = config.outputs / lineage.GATE_REPORT_FILE
    report.write_text(verdict.report)
    (config.outputs / lineage.GATE_FILE).write_text(json.dumps(asdict(verdict), indent=2) + "\n")
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a") as handle:
            handle.write(verdict.report + "\n")
    return report


def run(config: Config, run_id: str | None = None) -> Verdict:
    context = attach(config, run_id)
    model_name = config.tracking.model_name
    observed = context.run.data.metrics
    champion_version, champion = champion_metrics(tracking.reference_client(config), model_name)
    checks = threshold_checks(config, observed, champion) + regression_checks(config, observed, champion)
{%- if cookiecutter.task != "reinforcement" %}
    checks += privacy_checks(config, observed) + importance_checks(config, observed, context.schema)
{%- endif %}
    passed = all(check.passed for check in checks)
    report = render(checks, passed, context.run_id, champion_version, model_name)

    with mlflow.start_run(run_id=context.run_id):
        mlflow.log_text(report, lineage.GATE_REPORT_ARTIFACT)
        mlflow.set_tag(lineage.GATE_VERDICT, lineage.PASSED if passed else lineage.FAILED)
        mlflow.set_tag(lineage.stage_tag("gate"), lineage.DONE)
    verdict = Verdict(run_id=context.run_id, passed=passed, checks=checks, model_name=model_name, report=report)
    path = publish(config, verdict)
    print(report)
    if not passed:
        failed = ", ".join(check.name for check in checks if not check.passed)
        raise CheckFailed(f"gate failed ({failed}); nothing was registered. Report: {path}")
    log.info("gate passed for run %s: `export` and `register` come next", context.run_id)
    return verdict
