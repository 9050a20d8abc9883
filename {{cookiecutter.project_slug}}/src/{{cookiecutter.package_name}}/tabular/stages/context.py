"""What every tabular stage after train starts from: the attached run, its model and its test rows."""

from __future__ import annotations

import json
from dataclasses import dataclass

import mlflow
import pandas as pd

from ... import lineage
from ...stages.context import AttachedRun, attach_run
from .. import frameworks
from ..config import Config
from ..dataio import data
from ..dataio.data import Schema
from ..frameworks import Framework


@dataclass(frozen=True)
class RunContext(AttachedRun):
    framework: Framework
    schema: Schema
    classes: list
    config: Config

    def test_rows(self) -> pd.DataFrame:
        """The run's held-out rows, re-derived from the data file and checked against the run's digest."""
        return data.held_out(self.config, self.run.data.params, self.run_id)


def run_schema(config: Config, run_id: str) -> Schema:
    """The schema train logged with the run, with the config's sensitive features."""
    described = mlflow.artifacts.load_dict(f"runs:/{run_id}/{lineage.SCHEMA_ARTIFACT}")
    return Schema(
        task=described["task"],
        target=described["target"],
        columns={f["name"]: data.Column(type=f["type"], values=f.get("categories")) for f in described["features"]},
        sensitive=list(config.data.sensitive_features),
    )


def attach(config: Config, run_id: str | None) -> RunContext:
    attached = attach_run(config, run_id)
    run = attached.run
    return RunContext(
        client=attached.client,
        run=run,
        framework=frameworks.load(run.data.tags[lineage.FRAMEWORK]),
        schema=run_schema(config, attached.run_id),
        classes=json.loads(run.data.tags.get(lineage.MODEL_CLASSES, "[]")),
        config=config,
    )
