"""The monitor's report: one object, written as JSON (for machines and the workflow) and Markdown (for people)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .... import lineage
from ....stages.checks import Check
from .drift import Drift


@dataclass(frozen=True)
class Report:
    status: str  # passed | failed | too_few_rows | untrusted_labels (lineage)
    model_name: str
    model_version: str
    training_run_id: str
    since: str
    until: str
    rows: int
    labelled_rows: int
    min_rows: int
    min_labelled_rows: int
    psi_max: float
    p_value: float
    trusted_labelled_rows: int = 0  # labelled rows whose label came from an authenticated source
    min_trusted_label_share: float = 0.0
    drift: list[Drift] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)  # gate thresholds the window cannot measure
    other_runs: dict[str, int] = field(default_factory=dict)  # rows of earlier models in the window, not judged
    reasons: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        return [d.column for d in self.drift if d.drifted]

    @property
    def crossed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]


def reasons(drift: list[Drift], checks: list[Check]) -> list[str]:
    """Why the monitor fails, one line per kind, naming each feature and threshold."""
    found = []
    if drifted := [d for d in drift if d.drifted]:
        found.append(
            "drift in " + ", ".join(f"{d.column} (PSI {d.psi:.3f}, {d.test} p={d.p_value:.2g})" for d in drifted)
        )
    if crossed := [c for c in checks if not c.passed]:
        found.append(
            "thresholds crossed on the labelled rows: "
            + ", ".join(f"{c.name} = {c.value:.4f} (must be {c.threshold})" for c in crossed if c.value is not None)
        )
    return found


def title(report: Report) -> str:
    verdict = {
        lineage.PASSED: "PASSED",
        lineage.FAILED: "FAILED",
        lineage.TOO_FEW_ROWS: "NO VERDICT (too few rows)",
        lineage.UNTRUSTED_LABELS: "NO VERDICT (not enough trusted labels)",
    }
    return f"Monitor: {verdict[report.status]} - {report.model_name} version {report.model_version or '?'}"


def render(report: Report) -> str:
    lines = [
        f"## {title(report)}",
        "",
        f"Window {report.since} to {report.until}: {report.rows} logged rows, {report.labelled_rows} labelled; "
        f"training run `{report.training_run_id}`.",
        "",
    ]
    if report.status == lineage.TOO_FEW_ROWS:
        lines += [
            f"Fewer than `monitor.min_rows` = {report.min_rows} rows: drift was not judged. Widen the window "
            "(`--last`), raise the server's sampling rate, or lower `monitor.min_rows`.",
            "",
        ]
    if report.status == lineage.UNTRUSTED_LABELS:
        lines += [
            f"Fewer than `monitor.min_trusted_label_share` = {report.min_trusted_label_share:g} of the labels came "
            "from an authenticated source: nothing was judged. Find who wrote the others (their `label_source` is "
            "empty in the prediction log), remove them, and label through /feedback with a token or import-labels.",
            "",
        ]
    lines += [f"- {reason}" for reason in report.reasons] + ([""] if report.reasons else [])
    if report.drift:
        lines += [
            f"### Drift against the training run's test split (PSI > {report.psi_max:g} and p < {report.p_value:g})",
            "",
            "| column | kind | PSI | test | statistic | p-value | result |",
            "|---|---|---:|---|---:|---:|---|",
        ]
        lines += [
            f"| {d.column} | {d.kind} | {d.psi:.4f} | {d.test} | {d.statistic:.4f} | {d.p_value:.3g} | "
            f"{'**DRIFT**' if d.drifted else 'ok'} |"
            for d in report.drift
        ]
        lines.append("")
    if report.status not in (lineage.TOO_FEW_ROWS, lineage.UNTRUSTED_LABELS):
        lines += [f"### Metrics and fairness on the {report.labelled_rows} labelled rows (the gate's thresholds)", ""]
        if report.labelled_rows < report.min_labelled_rows:
            lines.append(f"Not judged: fewer than `monitor.min_labelled_rows` = {report.min_labelled_rows}.")
        else:
            lines += ["| check | value | threshold | result |", "|---|---:|---|---|"]
            lines += [
                f"| {c.name} | {c.value:.4f} | {c.threshold} | {'pass' if c.passed else '**FAIL**'} |"
                for c in report.checks
                if c.value is not None
            ]
            if report.unmeasured:
                lines += ["", "Not measurable on the window: " + ", ".join(report.unmeasured) + "."]
        lines.append("")
    if report.other_runs:
        others = ", ".join(f"`{run}` ({rows} rows)" for run, rows in report.other_runs.items())
        lines += [f"Rows of other models in the window, not judged: {others}.", ""]
    return "\n".join(lines)


def publish(report: Report, markdown: str, outputs: Path) -> tuple[Path, Path]:
    """outputs/monitor.json and outputs/monitor.md; the Markdown also to the job summary on GitHub."""
    outputs.mkdir(parents=True, exist_ok=True)
    as_json = outputs / lineage.MONITOR_FILE
    as_json.write_text(json.dumps(asdict(report) | {"drifted": report.drifted, "crossed": report.crossed}, indent=2))
    as_markdown = outputs / lineage.MONITOR_REPORT_FILE
    as_markdown.write_text(markdown)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a") as handle:
            handle.write(markdown + "\n")
    return as_json, as_markdown
