"""What every stage after train starts from, in a reinforcement-learning project: the attached run and its policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from .. import lineage, tracking
from ..config import Config
from ..errors import UsageError
from ..rl import store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    client: MlflowClient
    run: mlflow.entities.Run

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def model_uri(self) -> str:
        return self.run.data.tags[lineage.MODEL_URI]

    def policy(self, config: Config) -> Any:
        """The RLlib module, from the run's weights (tensors only; the pickled checkpoint is never loaded)."""
        return store.load_policy(self.model_uri, config.rl)


def attach(config: Config, run_id: str | None) -> RunContext:
    client = tracking.connect(config)
    ref = tracking.find_run(config, run_id)
    run = tracking.check_run(client, ref)
    if run.data.tags.get(lineage.stage_tag("train")) != lineage.DONE:
        raise UsageError(
            f"run {ref.run_id} (from {ref.source}) has no trained policy: its train stage did not finish; "
            "run `train` again"
        )
    log.info("attached to run %s (from %s)", ref.run_id, ref.source)
    return RunContext(client=client, run=run)
