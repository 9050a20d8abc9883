"""What the training run already recorded, as `monitor`'s reference: its schema, its test split
(re-derived from the data file and checked against the run's digest), and what its ONNX file (the one
a release serves, checked against its digest) predicts on that split."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .... import lineage
from ....errors import UsageError
from ....ops import registry
from ...config import Config
from ...dataio import data, onnx_model
from ...dataio.data import Schema
from ...pure.predictions import Predictions

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class Reference:
    run_id: str
    schema: Schema
    classes: list
    rows: pd.DataFrame  # the test split, the user's column names
    predicted: Predictions  # the ONNX model's predictions on those rows


def load(client: MlflowClient, config: Config, run_id: str) -> Reference:
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise UsageError(
            f"the logged rows name training run {run_id}, which is not in {client.tracking_uri}: "
            f"{error.message} (set MLFLOW_TRACKING_URI, or MLFLOW_REGISTRY_URI, to the store that run is in)"
        ) from error
    digest = run.data.tags.get(lineage.ONNX_SHA256, "")
    if not lineage.SHA256.fullmatch(digest):
        raise UsageError(f"training run {run_id} has no exported ONNX model (tag {lineage.ONNX_SHA256}): run `export`")
    with tempfile.TemporaryDirectory() as folder:
        try:
            described = json.loads(Path(client.download_artifacts(run_id, lineage.SCHEMA_ARTIFACT, folder)).read_text())
        except (MlflowException, OSError) as error:
            raise UsageError(
                f"training run {run_id} lacks {lineage.SCHEMA_ARTIFACT}, which `train` logs: {error}"
            ) from error
        rows = data.held_out(config, run.data.params, run_id)  # re-derived: the run holds no rows
        onnx_file = registry.download_verified(client, run_id, digest, Path(folder) / lineage.ONNX_FILE)
        session = onnx_model.session(onnx_file.read_bytes())
    schema = Schema(
        task=described["task"],
        target=described["target"],
        columns={f["name"]: data.Column(type=f["type"], values=f.get("categories")) for f in described["features"]},
        sensitive=list(config.data.sensitive_features),
    )
    feeds = onnx_model.feeds(data.features(rows, schema), schema)
    return Reference(
        run_id=run_id,
        schema=schema,
        classes=json.loads(run.data.tags.get(lineage.MODEL_CLASSES, "[]")),
        rows=rows,
        predicted=onnx_model.predict(session, feeds, schema.task),
    )
