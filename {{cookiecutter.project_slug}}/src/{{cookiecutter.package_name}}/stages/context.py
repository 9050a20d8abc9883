"""What every stage after train starts from: the attached run, its model and its test rows."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from .. import data, frameworks, lineage, tracking
from ..config import Config
from ..data import Schema
from ..errors import UsageError
from ..frameworks import Framework

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    client: MlflowClient
    run: mlflow.entities.Run
    framework: Framework
    schema: Schema
    classes: list
    config: Config

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def model_uri(self) -> str:
        return self.run.data.tags[lineage.MODEL_URI]

    def test_rows(self) -> pd.DataFrame:
        """The run's held-out rows, re-derived from the data file and checked against the run's digest."""
        return data.held_out(self.config, self.run.data.params, self.run_id)


def attach(config: Config, run_id: str | None) -> RunContext:
    client = tracking.connect(config)
    ref = tracking.find_run(config, run_id)
    run = tracking.check_run(client, ref)
    if run.data.tags.get(lineage.stage_tag("train")) != lineage.DONE:
        raise UsageError(
            f"run {ref.run_id} (from {ref.source}) has no trained model: its train stage did not "
            "finish; run `train` again"
        )
    log.info("attached to run %s (from %s)", ref.run_id, ref.source)
    described = mlflow.artifacts.load_dict(f"runs:/{ref.run_id}/{lineage.SCHEMA_ARTIFACT}")
    schema = Schema(
        task=described["task"],
        target=described["target"],
        columns={f["name"]: data.Column(type=f["type"], values=f.get("categories")) for f in described["features"]},
        sensitive=list(config.data.sensitive_features),
    )
    return RunContext(
        client=client,
        run=run,
        framework=frameworks.load(run.data.tags[lineage.FRAMEWORK]),
        schema=schema,
        classes=json.loads(run.data.tags.get(lineage.MODEL_CLASSES, "[]")),
        config=config,
    )
