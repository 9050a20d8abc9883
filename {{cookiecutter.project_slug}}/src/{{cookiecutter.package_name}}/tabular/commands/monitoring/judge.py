"""What `monitor` finds in a window: drift per input and on the predictions, the gate's thresholds on
the labelled rows, one report, recorded as a run of its own in the project's experiment."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, replace

import pandas as pd

from .... import lineage, tracking
from ....stages.checks import Check
from ... import config as configuration
from . import drift, quality, reference, report, window

log = logging.getLogger(__name__)


def drift_of(ref: reference.Reference, rows: pd.DataFrame, settings: configuration.Monitor) -> list[drift.Drift]:
    """Each input of the model, then its predictions (the labels for a classifier, the values otherwise)."""
    inputs, schema = window.inputs(rows), ref.schema
    found = []
    for name in schema.features:
        current = inputs[name] if name in inputs.columns else pd.Series([None] * len(rows), dtype=object)
        if name in schema.numeric:
            found.append(drift.number(name, ref.rows[name], current, settings.bins, settings.psi_max, settings.p_value))
        else:
            found.append(drift.category(name, ref.rows[name], current, settings.psi_max, settings.p_value))
    expected, logged = pd.Series(ref.predicted.point), pd.Series(list(rows["prediction"]))
    if schema.task == "regression":
        found.append(drift.number("prediction", expected, logged, settings.bins, settings.psi_max, settings.p_value))
    else:
        found.append(drift.category("prediction", expected, logged, settings.psi_max, settings.p_value))
    return found


def metric_key(column: str) -> str:
    """An MLflow metric name for a column (MLflow allows letters, digits, `_-. /`)."""
    return re.sub(r"[^\w\-. /]", "_", column)


def record(config: configuration.Config, outcome: report.Report, markdown: str, observed: dict[str, float]) -> str:
    """The report as a run of its own in the project's experiment; returns its id.

    Created through the client, not mlflow.start_run: a $MLFLOW_RUN_ID left in the environment must not
    turn the monitor's run into an addition to a training run.
    """
    from mlflow.entities import Metric

    client = tracking.connect(config)
    started = int(time.time() * 1000)
    run = client.create_run(
        tracking.experiment_id(config, client),
        run_name=f"monitor {outcome.since[:16]} to {outcome.until[:16]}",
        tags={
            lineage.MONITOR_OF_RUN: outcome.training_run_id,
            lineage.MONITOR_OF_VERSION: outcome.model_version,
            lineage.MONITOR_STATUS: outcome.status,
            "monitor.since": outcome.since,
            "monitor.until": outcome.until,
        },
    )
    values = {"window.rows": outcome.rows, "window.labelled_rows": outcome.labelled_rows} | observed
    for found in outcome.drift:
        key = metric_key(found.column)
        values |= {f"drift.{key}.psi": found.psi, f"drift.{key}.{found.test}": found.statistic}
        values |= {f"drift.{key}.p_value": found.p_value, f"drift.{key}.drifted": float(found.drifted)}
    client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), started, 0) for k, v in values.items()])
    client.log_text(run.info.run_id, markdown, f"{lineage.MONITOR_FOLDER}/report.md")
    client.log_dict(run.info.run_id, asdict(outcome), f"{lineage.MONITOR_FOLDER}/report.json")
    client.set_terminated(run.info.run_id, "FINISHED" if outcome.status == lineage.PASSED else "FAILED")
    return str(run.info.run_id)


def judge(config: configuration.Config, span: window.Window, rows: pd.DataFrame) -> tuple[report.Report, dict]:
    """The report on the rows of the model that logged last (the one in service); the metrics it measured."""
    settings = config.monitor
    outcome = report.Report(
        status=lineage.TOO_FEW_ROWS,
        model_name=config.tracking.model_name,
        model_version="",
        training_run_id="",
        since=span.since.isoformat(timespec="seconds"),
        until=span.until.isoformat(timespec="seconds"),
        rows=0,
        labelled_rows=0,
        min_rows=settings.min_rows,
        min_labelled_rows=settings.min_labelled_rows,
        min_trusted_label_share=settings.min_trusted_label_share,
        psi_max=settings.psi_max,
        p_value=settings.p_value,
    )
    if rows.empty:
        return outcome, {}
    run_id, version, counts = window.latest_run(rows)
    current = rows[rows["run_id"] == run_id]
    labelled = current[current["label"].notna()]
    outcome = replace(
        outcome,
        model_version=version,
        training_run_id=run_id,
        rows=len(current),
        labelled_rows=len(labelled),
        other_runs={run: count for run, count in counts.items() if run != run_id},
    )
    if len(current) < settings.min_rows:
        return outcome, {}
    trust = window.trusted(labelled)
    outcome = replace(outcome, trusted_labelled_rows=int(trust.sum()))
    if len(labelled) and outcome.trusted_labelled_rows / len(labelled) < settings.min_trusted_label_share:
        # Labels anyone could have written must not fail the model (an issue, a retraining): no verdict.
        untrusted = (
            f"not enough trusted labels: {outcome.trusted_labelled_rows} of {len(labelled)} labels came from "
            f"an authenticated source (/feedback with a FEEDBACK_TOKEN, or import-labels); "
            f"monitor.min_trusted_label_share is {settings.min_trusted_label_share:g}"
        )
        return replace(outcome, status=lineage.UNTRUSTED_LABELS, reasons=[untrusted]), {}
    labelled = labelled[trust]  # the metrics are measured on trusted labels only

    tracking.connect(config)  # an embedded store that moved is pointed back at this folder first
    ref = reference.load(tracking.reference_client(config), config, run_id)
    found = drift_of(ref, current, settings)
    observed: dict[str, float] = {}
    checks: list[Check] = []
    unmeasured: list[str] = []
    if len(labelled) >= settings.min_labelled_rows:
        try:
            observed = quality.measure(labelled, ref)
        except ValueError as error:  # e.g. one class only among the labels: ROC AUC is undefined
            log.warning("metrics not computed on the %d labelled rows: %s", len(labelled), error)
        checks, unmeasured = quality.checks(config, observed)
    why = report.reasons(found, checks)
    status = lineage.FAILED if why else lineage.PASSED
    return replace(outcome, status=status, drift=found, checks=checks, unmeasured=unmeasured, reasons=why), observed
