"""train's bookkeeping, the same for every family: the run opened, what it was trained from and after tagged,
and the run closed as the one later stages attach to. The family's train stage fits its model in between."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow

from .. import lineage, tracking
from ..config import Config
from . import StageResult

if TYPE_CHECKING:
    from mlflow.entities import RunInfo
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trained(StageResult):
    """What a family's train stage returns: the run it recorded and the model logged with it."""

    run_id: str
    model_uri: str


def open_run(config: Config, client: MlflowClient, continued: str | None = None) -> mlflow.ActiveRun:
    """A new run in the project's experiment, or the run `continued` names (tune's, whose trials are its children)."""
    if continued is not None:
        active = mlflow.start_run(run_id=continued)
    else:
        active = mlflow.start_run(experiment_id=tracking.experiment_id(config, client))
    log.info("run %s %s in %s", active.info.run_id, "continued" if continued else "started", mlflow.get_tracking_uri())
    return active


def record_origin(config: Config, framework: str, tags: dict[str, str] | None = None) -> None:
    """The tags every trained run carries (its code, ref, framework and task, plus `tags`), and validate's
    report: the run was trained after validate passed on its input."""
    mlflow.set_tags(
        {
            lineage.GIT_SHA: lineage.git_sha(config.root),
            lineage.SOURCE_REF: lineage.source_ref(),
            lineage.FRAMEWORK: framework,
            lineage.TASK: config.task,
        }
        | (tags or {})
    )
    mlflow.log_artifact(str(config.outputs / lineage.VALIDATION_FILE), lineage.VALIDATION_FOLDER)
    mlflow.set_tag(lineage.stage_tag("validate"), lineage.DONE)


def finish(config: Config, run: RunInfo, model_uri: str, classes: list) -> Trained:
    """The model's URI and classes tagged, train's tag, and outputs/run.json: only a finished run becomes the
    one later stages attach to. Called last inside the run."""
    mlflow.set_tags({lineage.MODEL_URI: model_uri, lineage.MODEL_CLASSES: json.dumps(classes)})
    mlflow.set_tag(lineage.stage_tag("train"), lineage.DONE)
    lineage.RunRecord(run.run_id, run.experiment_id, tracking.tracking_uri(config)).save(config.outputs)
    return Trained(run_id=run.run_id, model_uri=model_uri)
