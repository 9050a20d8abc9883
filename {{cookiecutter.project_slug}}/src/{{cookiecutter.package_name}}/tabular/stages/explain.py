"""explain: global feature importance and a few local explanations on held-out rows, in the user's column names.

The model's framework computes SHAP values (Framework.explain) on a bounded sample of the run's test
split (config.yaml's explain section), against other test rows as background. Logged to the run:
explain/importance.json (each column's share of total importance), explain/local.json, a PNG, and
one `importance.<input name>` metric per column, which `gate` checks (tabular/gate_checks.py).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from ... import lineage
from ...stages import StageResult
from ..config import Config
from ..dataio import data, plots
from ..pure import attributions
from .context import attach

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Explained(StageResult):
    run_id: str
    importance: dict[str, float]  # user column -> share of total importance
    method: str


def run(config: Config, run_id: str | None = None) -> Explained:
    context = attach(config, run_id)
    settings, seed = config.explain, config.split.seed
    features = data.features(context.test_rows(), context.schema)
    # Background and sample are disjoint test rows; a test split too small for both explains its background.
    background = features.sample(n=min(settings.background_rows, len(features)), random_state=seed)
    rest = features.drop(index=background.index)
    sample = (rest if len(rest) else background).head(settings.sample_rows)
    model = context.framework.load_model(context.model_uri)
    explained = context.framework.explain(model, sample, background, settings.orders, seed)

    column_of = {input_name: column for column, input_name in context.schema.inputs.items()}
    shares = attributions.shares(explained)
    importance = {column_of[name]: share for name, share in shares.items()}
    report: dict[str, Any] = {
        "features": dict(sorted(importance.items(), key=lambda item: -item[1])),
        "method": explained.method,
        "outputs": explained.outputs,
        "rows": len(sample),
        "background_rows": len(background),
    }
    local = {
        "method": explained.method,
        "rows": [named(row, column_of) for row in attributions.local(explained, sample, settings.local_rows)],
    }
    own = context.framework.global_importance(model, sample)
    with mlflow.start_run(run_id=context.run_id):
        mlflow.log_dict(report, lineage.IMPORTANCE_ARTIFACT)
        mlflow.log_dict(local, lineage.LOCAL_ARTIFACT)
        if own is not None:
            mlflow.log_dict(model_importance(own, column_of), lineage.MODEL_IMPORTANCE_ARTIFACT)
        with tempfile.TemporaryDirectory() as folder:
            sensitive = [column for column in context.schema.sensitive if column in importance]
            path = plots.importance(importance, sensitive, explained.method, Path(folder) / "importance.png")
            mlflow.log_artifact(str(path), lineage.EXPLAIN_FOLDER)
        mlflow.log_metrics({lineage.importance_metric(name): share for name, share in shares.items()})
        mlflow.set_tag(lineage.stage_tag("explain"), lineage.DONE)
    config.outputs.mkdir(parents=True, exist_ok=True)
    (config.outputs / lineage.IMPORTANCE_FILE).write_text(json.dumps(report, indent=2) + "\n")
    top = ", ".join(f"{column} {share:.1%}" for column, share in list(report["features"].items())[:5])
    log.info("explained %d held-out rows (%s): %s", len(sample), explained.method, top)
    return Explained(run_id=context.run_id, importance=importance, method=explained.method)


def named(row: dict[str, Any], column_of: dict[str, str]) -> dict[str, Any]:
    """A local explanation keyed by the user's column names instead of the model's input names."""
    return row | {
        "values": {column_of[name]: value for name, value in row["values"].items()},
        "contributions": {column_of[name]: value for name, value in row["contributions"].items()},
    }


def model_importance(own: dict[str, float], column_of: dict[str, str]) -> dict[str, Any]:
    """A glass-box model's own importance, in importance.json's shape: shares of the total, by column name."""
    total = sum(abs(value) for value in own.values())
    return {
        "features": {
            column_of.get(name, name): abs(value) / total if total > 0 else 1.0 / len(own)
            for name, value in sorted(own.items(), key=lambda item: -abs(item[1]))
        },
        "method": "the model's own global importance",
    }
