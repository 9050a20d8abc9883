"""What every stage after train starts from, in any family: the attached run, checked to have finished train."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
from mlflow.tracking import MlflowClient

from .. import lineage, tracking
from ..config import Config
from ..errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttachedRun:
    client: MlflowClient
    run: mlflow.entities.Run

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def model_uri(self) -> str:
        return self.run.data.tags[lineage.MODEL_URI]


def attach_run(config: Config, run_id: str | None, trained: str = "model") -> AttachedRun:
    """The run to work on (`run_id`, else $MLFLOW_RUN_ID, else outputs/run.json); `trained` names what
    its train stage made, for the error when train did not finish."""
    client = tracking.connect(config)
    ref = tracking.find_run(config, run_id)
    run = tracking.check_run(client, ref)
    if run.data.tags.get(lineage.stage_tag("train")) != lineage.DONE:
        raise UsageError(
            f"run {ref.run_id} (from {ref.source}) has no trained {trained}: its train stage did not "
            "finish; run `train` again"
        )
    log.info("attached to run %s (from %s)", ref.run_id, ref.source)
    return AttachedRun(client=client, run=run)
