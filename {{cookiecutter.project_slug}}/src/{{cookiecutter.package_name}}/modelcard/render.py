"""MODEL_CARD.md from the team's answers and the run's facts: pure, no MLflow, no files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import lineage
from .answers import HEADINGS, Answers, Owner, prompt, unanswered
from .facts import Facts

NOT_RECORDED = "Not recorded"
TOP_FEATURES = 15  # an importance table longer than this lists the rest by count only


def cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"


def table(header: list[str], rows: list[list[object]], align: list[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows),
    ]


def answer(answers: Answers, field: str) -> list[str]:
    if field in unanswered(answers):
        return [f"> **Not answered yet** (model_card.yaml `{field}`): {prompt(field)}"]
    value = getattr(answers, field)
    if isinstance(value, list):
        return [
            f"- {item.name}" + (f" ({item.contact})" if item.contact else "")
            if isinstance(item, Owner)
            else f"- {item}"
            for item in value
        ]
    return [str(value).strip()]


def details(facts: Facts) -> list[str]:
    tags, params = facts.tags, facts.params
    version = facts.version
    started = (
        datetime.fromtimestamp(facts.start_time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        if facts.start_time_ms
        else "unknown"
    )
    estimator = f" (estimator {params['model.estimator']})" if "model.estimator" in params else ""
    base = facts.base_model
    rows: list[list[object]] = [
        [
            "Registered model",
            f"{version.name} version {version.version}"
            + (f" (aliases: {', '.join(version.aliases)})" if version.aliases else "")
            if version
            else "not registered",
        ],
        ["MLflow run", f"`{facts.run_id}` (experiment {facts.experiment_id}), started {started}"],
        ["Framework", f"{tags.get(lineage.FRAMEWORK, params.get('framework', NOT_RECORDED))}{estimator}"],
        ["Task", tags.get(lineage.TASK, params.get("task", NOT_RECORDED))],
        [
            "Git commit",
            f"`{tags[lineage.GIT_SHA]}` (ref {tags.get(lineage.SOURCE_REF, 'unknown')})"
            if lineage.GIT_SHA in tags
            else NOT_RECORDED,
        ],
        [
            "Base model",
            ", ".join(f"{key} `{value}`" for key, value in base.items())
            if base
            else "none recorded (trained from scratch)",
        ],
    ]
    if lineage.IMPORT_SOURCE in tags:
        rows.append(
            [
                "Trained elsewhere",
                f"imported from `{tags[lineage.IMPORT_SOURCE]}` ({tags.get(lineage.IMPORT_FORMAT, '?')}, "
                f"sha256 `{tags.get(lineage.IMPORT_SHA256, '?')}`)",
            ]
        )
    model_params = {k: v for k, v in sorted(params.items()) if k.startswith("model.") and k != "model.estimator"}
    if model_params:
        rows.append(["Parameters", ", ".join(f"{k[len('model.') :]}={v}" for k, v in model_params.items())])
    return table(["", ""], rows)


def data_section(facts: Facts) -> list[str]:
    params, schema, validation = facts.params, facts.schema, facts.validation
    lines = [
        f"- Training file: `{params.get('data.path', NOT_RECORDED)}`, "
        f"sha256 `{params.get('data.sha256', NOT_RECORDED)}`",
        f"- Rows: {params.get('rows.train', '?')} for training, {params.get('rows.test', '?')} held out "
        f"(test_size {params.get('split.test_size', '?')}, seed {params.get('split.seed', '?')})",
    ]
    if schema:
        features = ", ".join(f"`{f['name']}` ({f['type']})" for f in schema.get("features", []))
        lines.append(f"- Target `{schema.get('target')}`; {len(schema.get('features', []))} features: {features}")
    else:
        lines.append(f"- Columns: {NOT_RECORDED.lower()} (no schema.json)")
    if validation is None:
        lines.append(f"- Validation: {NOT_RECORDED.lower()} (no validation result logged with the run)")
    else:
        verdict = "passed" if validation["success"] else "**failed**"
        lines.append(
            f"- Validation (Great Expectations): {verdict}, {validation['successful']} of "
            f"{validation['evaluated']} expectations met"
        )
        lines += [f"  - {failure}" for failure in validation["failures"]]
    return lines


def metrics_section(facts: Facts) -> list[str]:
    names = sorted({name.split(".", 1)[1] for name in facts.metrics if name.startswith(("test.", "train."))})
    if not names:
        return [f"{NOT_RECORDED}: the run logged no test.* or train.* metrics."]
    rows: list[list[object]] = [
        [name, number(facts.metrics.get(f"test.{name}")), number(facts.metrics.get(f"train.{name}"))] for name in names
    ]
    return table(["metric", "held-out rows (test)", "training rows"], rows, ["---", "---:", "---:"])


def fairness_section(facts: Facts) -> list[str]:
    if not facts.fairness:
        return [f"{NOT_RECORDED}: the run has no per-group audit (no data.sensitive_features configured)."]
    lines: list[str] = []
    for feature, by_group in facts.fairness.items():
        lines += [f"### `{feature}`", ""]
        prefix = f"fairness.{feature}."
        differences = {k[len(prefix) :]: v for k, v in sorted(facts.metrics.items()) if k.startswith(prefix)}
        if differences:
            lines += [", ".join(f"{name} {number(value)}" for name, value in differences.items()), ""]
        columns = list(by_group.get("columns", []))
        rows = [
            [row[0], *(number(v) if isinstance(v, int | float) else v for v in row[1:])]
            for row in by_group.get("data", [])
        ]
        lines += [*table(columns, rows, ["---"] + ["---:"] * (len(columns) - 1)), ""]
    return lines[:-1]


def importance_lines(document: dict[str, Any], title: str) -> list[str]:
    shares = sorted(document.get("features", {}).items(), key=lambda item: -float(item[1]))
    lines = [f"{title} (method: {document.get('method', 'not stated')}):", ""]
    lines += table(
        ["feature", "share of importance"],
        [[name, f"{float(share):.1%}"] for name, share in shares[:TOP_FEATURES]],
        ["---", "---:"],
    )
    if len(shares) > TOP_FEATURES:
        lines.append(
            f"\n{len(shares) - TOP_FEATURES} more features share the remaining "
            f"{sum(float(share) for _, share in shares[TOP_FEATURES:]):.1%}."
        )
    return lines


def explanation_section(facts: Facts) -> list[str]:
    if facts.importance is None and facts.model_importance is None:
        return [f"{NOT_RECORDED}: the run has no explain/importance.json (no `explain` stage ran for it)."]
    lines: list[str] = []
    if facts.importance is not None:
        lines += importance_lines(facts.importance, "Global feature importance on held-out rows")
    if facts.model_importance is not None:
        lines += ([""] if lines else []) + importance_lines(facts.model_importance, "The model's own explanation")
    return lines


def privacy_section(facts: Facts) -> list[str]:
    epsilon, delta = (facts.metrics.get(name) for name in lineage.PRIVACY_METRICS)
    enabled = facts.params.get(lineage.PRIVACY_ENABLED)
    if epsilon is None and delta is None:
        said = f" (param {lineage.PRIVACY_ENABLED} = {enabled})" if enabled is not None else ""
        return [f"{NOT_RECORDED}: the run logged no {' or '.join(lineage.PRIVACY_METRICS)}{said}."]
    return [
        f"Differentially private training: epsilon = {'n/a' if epsilon is None else f'{epsilon:.4g}'}, "
        f"delta = {'n/a' if delta is None else f'{delta:.3g}'}"
        + (f" (param {lineage.PRIVACY_ENABLED} = {enabled})" if enabled is not None else "")
        + "."
    ]


def export_section(facts: Facts) -> list[str]:
    parity, difference = facts.tags.get(lineage.EXPORT_PARITY), facts.metrics.get("export.parity_max_abs_diff")
    if parity is None:
        return [f"{NOT_RECORDED}: the run was not exported to ONNX."]
    return [
        f"- onnxruntime parity with the native model on every held-out row: {parity}"
        + (f" (largest difference {difference:.3g})" if difference is not None else ""),
        f"- ONNX file sha256: `{facts.tags.get(lineage.ONNX_SHA256, NOT_RECORDED.lower())}`",
    ]


def gate_section(facts: Facts) -> list[str]:
    verdict = facts.tags.get(lineage.GATE_VERDICT)
    if verdict is None:
        return [f"{NOT_RECORDED}: the gate did not judge this run."]
    lines = [f"Verdict: **{verdict}**."]
    if facts.gate_report:
        # The report's own heading repeats the verdict; its sentence and table follow.
        body = facts.gate_report.strip().splitlines()
        lines += ["", *(body[1:] if body and body[0].startswith("#") else body)]
    return [line for index, line in enumerate(lines) if line or (index and lines[index - 1])]


def render(facts: Facts, answers: Answers, answers_source: str) -> str:
    """The card; `answers_source` says where the team's answers were read from."""
    title = facts.version.name + f" version {facts.version.version}" if facts.version else f"run {facts.run_id}"
    open_questions = unanswered(answers)
    lines = [
        f"# Model card: {title}",
        "",
        f"_Generated from MLflow run `{facts.run_id}`; the team's answers from {answers_source}._",
    ]
    if open_questions:
        lines += [
            "",
            f"**{len(open_questions)} of {len(HEADINGS)} questions in model_card.yaml are not answered yet:** "
            + ", ".join(f"`{field}`" for field in open_questions)
            + ".",
        ]
    lines += ["", "## Model details", "", *details(facts)]
    for field, heading in HEADINGS.items():
        lines += ["", f"## {heading}", "", *answer(answers, field)]
    sections = (
        ("Data", data_section),
        ("Metrics", metrics_section),
        ("Fairness per group", fairness_section),
        ("Explanations", explanation_section),
        ("Privacy budget", privacy_section),
        ("ONNX export", export_section),
        ("Gate", gate_section),
    )
    for heading, section in sections:
        lines += ["", f"## {heading}", "", *section(facts)]
    return "\n".join(lines) + "\n"
