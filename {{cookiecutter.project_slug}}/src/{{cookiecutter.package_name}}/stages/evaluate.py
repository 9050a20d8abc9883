"""evaluate's bookkeeping, the same for every family: the scores gate judges, logged to the run and written
to outputs/evaluation.json. The family's evaluate stage computes them (and logs its own artifacts) first."""

from __future__ import annotations

import json
from dataclasses import dataclass

import mlflow

from .. import lineage
from ..config import Config
from . import StageResult


@dataclass(frozen=True)
class Evaluated(StageResult):
    """What a family's evaluate stage returns: the scores gate's thresholds name (`test.f1`, `evaluate.return_mean`)."""

    run_id: str
    scores: dict[str, float]


def record(config: Config, run_id: str, scores: dict[str, float]) -> Evaluated:
    """Log `scores` and evaluate's tag to the active run, and write them where gate reads them."""
    mlflow.log_metrics(scores)
    mlflow.set_tag(lineage.stage_tag("evaluate"), lineage.DONE)
    config.outputs.mkdir(parents=True, exist_ok=True)
    (config.outputs / lineage.EVALUATION_FILE).write_text(json.dumps(scores, indent=2) + "\n")
    return Evaluated(run_id=run_id, scores=scores)
