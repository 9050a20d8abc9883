"""evaluate: task metrics, a Fairlearn audit per sensitive feature, and plots, on the held-out rows."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow

from ... import lineage
from ...stages.evaluate import Evaluated, record
from ..config import Config
from ..dataio import data, plots
from ..pure import fairness, metrics, predictions
from .context import attach

log = logging.getLogger(__name__)


def run(config: Config, run_id: str | None = None) -> Evaluated:
    context = attach(config, run_id)
    rows = context.test_rows()
    features = data.features(rows, context.schema)
    y_true = data.target(rows, context.schema).to_numpy()
    model = context.framework.load_model(context.model_uri)
    predicted = predictions.in_chunks(lambda part: context.framework.predict(model, part), features)

    scores = {
        f"test.{name}": value
        for name, value in metrics.compute(context.schema.task, y_true, predicted, context.classes).items()
    }
    groups = rows[[name for name in context.schema.sensitive if name in rows.columns]]
    audit, by_group = fairness.audit(context.schema.task, y_true, predicted, groups, context.classes)
    scores |= {f"fairness.{name}": value for name, value in audit.items()}

    with mlflow.start_run(run_id=context.run_id):
        for feature, table in by_group.items():
            mlflow.log_table(table.reset_index(), f"{lineage.FAIRNESS_FOLDER}/{feature}{lineage.FAIRNESS_SUFFIX}")
        with tempfile.TemporaryDirectory() as folder:
            for path in plots.draw(context.schema.task, y_true, predicted, context.classes, by_group, Path(folder)):
                mlflow.log_artifact(str(path), lineage.PLOTS_FOLDER)
        evaluated = record(config, context.run_id, scores)
    log.info(
        "evaluated on %d held-out rows: %s",
        len(rows),
        ", ".join(f"{name}={value:.4f}" for name, value in scores.items()),
    )
    return evaluated
