"""gate: every registered check (stages/checks.py): thresholds, no-regression against `champion`, the family's.

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

from .. import family as families
from .. import lineage, tracking
from ..config import Config
from ..errors import CheckFailed
from . import StageResult
from .checks import Check, Gate, GateCheck, regression_checks, threshold_checks
from .context import attach_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict(StageResult):
    run_id: str
    passed: bool
    checks: list[Check]
    model_name: str
    report: str


def thresholds(gate: Gate) -> list[Check]:
    return threshold_checks(gate.config, gate.observed, gate.champion)


def no_regression(gate: Gate) -> list[Check]:
    return regression_checks(gate.config, gate.observed, gate.champion, gate.lower_is_better)


# The core's checks, before the family's (family.Family.gate_checks), in the report's order.
CORE: tuple[GateCheck, ...] = (thresholds, no_regression)


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
    context = attach_run(config, run_id)
    model_name = config.tracking.model_name
    champion_version, champion = champion_metrics(tracking.reference_client(config), model_name)
    family = families.current()
    judged = Gate(config, context.run_id, context.run.data.metrics, champion, family.lower_is_better)
    checks = [check for judge in CORE + family.gate_checks for check in judge(judged)]
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
