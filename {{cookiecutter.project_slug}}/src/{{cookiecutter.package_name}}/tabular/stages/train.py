"""train: start the run, fit the configured framework's model, log everything the later stages need.

A training run composes steps (tabular/training/): tune's best params (tuned.py), a start from a
trained base (transfer.py) and differential privacy (privacy.py). `run` calls them in order, then the
helpers below it, top to bottom.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
import pandas as pd

from ... import lineage, tracking
from ...stages import train as core_train
from ...stages.train import Trained
from .. import frameworks
from ..config import Config, Task
from ..dataio import data
from ..pure import metrics, predictions
from ..training import privacy, transfer, tuned

log = logging.getLogger(__name__)


def run(config: Config, run_id: str | None = None) -> Trained:
    """Starts a new run, or continues the one `tune` started (with its best params): `run_id` is not used.
    Runs after `validate` passed on this data file (PIPELINE)."""
    client = tracking.connect(config)
    search = tuned.for_training(config)  # None unless tune.enabled
    config = tuned.with_best_params(config, search)
    schema, split = read_split(config)
    framework = frameworks.load(config.model.framework)
    # Before the run starts: a base that does not resolve, or statistics that cannot be released, record no run.
    base = transfer.base_for(client, config.model, config.privacy.enabled)  # None unless model.init_from
    released = privacy.group_statistics(config, split.train, schema)  # None unless privacy.report_epsilon

    with core_train.open_run(config, client, search.run_id if search else None) as active:
        log_inputs(config, schema, split, base)
        privacy.log_group_statistics(released)
        features, target = data.features(split.train, schema), data.target(split.train, schema)
        model = fit(framework, config, base, features, target, schema)
        scores, model_uri = log_trained(config.task, framework, model, features, target)
        log_test_split(split.test)
        trained = core_train.finish(config, active.info, model_uri, framework.classes(model))
    log.info(
        "trained %s; train %s",
        config.model.framework,
        ", ".join(f"{name}={value:.4f}" for name, value in scores.items()),
    )
    return trained


def read_split(config: Config) -> tuple[data.Schema, data.Partition]:
    """The table's schema and its train/test split. The split holds its own copies of the rows: the
    table itself is dropped on return (one table in memory, not two)."""
    frame = data.read_table(config.data_path, config.data.csv)
    schema = data.schema(config, frame)
    return schema, data.split(frame, schema, config.split.test_size, config.split.seed)


def log_inputs(config: Config, schema: data.Schema, split: data.Partition, base: transfer.Base | None) -> None:
    """What the model is trained from and how: tags, params, validate's report and the schema."""
    started_from = transfer.lineage_of(base)  # {} from scratch
    core_train.record_origin(config, config.model.framework, started_from)
    mlflow.log_params(
        {
            "framework": config.model.framework,
            **({"model.estimator": config.model.estimator} if config.model.estimator else {}),
            "task": config.task,
            "data.path": config.data.path.name,
            "data.sha256": data.fingerprint(config.data_path),
            "split.test_size": config.split.test_size,
            "split.seed": config.split.seed,
            "rows.train": len(split.train),
            "rows.test": len(split.test),
            **{f"model.{key}": value for key, value in config.model.params.items()},
            **privacy.params(config.privacy),
        }
        | started_from
    )
    mlflow.log_dict(schema.as_dict(), lineage.SCHEMA_ARTIFACT)


def fit(
    framework: frameworks.Framework,
    config: Config,
    base: transfer.Base | None,
    features: pd.DataFrame,
    target: pd.Series,
    schema: data.Schema,
) -> Any:
    """The model: from `base` (model.init_from), with DP-SGD (privacy.enabled), or from scratch; never
    from a base with DP-SGD (transfer.base_for refuses that before the run starts)."""
    if base is not None:
        return transfer.train_from(framework, base, features, target, schema, config.model, config.split)
    if config.privacy.enabled:
        return framework.train_private(features, target, schema, config.model, config.split, privacy=config.privacy)
    return framework.train(features, target, schema, config.model, config.split)


def log_trained(
    task: Task, framework: frameworks.Framework, model: Any, features: pd.DataFrame, target: pd.Series
) -> tuple[dict[str, float], str]:
    """The model's scores on its training rows, logged with the model: (scores, model URI)."""
    predicted = predictions.in_chunks(lambda rows: framework.predict(model, rows), features)
    scores = metrics.compute(task, target.to_numpy(), predicted, framework.classes(model))
    mlflow.log_metrics({f"train.{name}": value for name, value in scores.items()})
    return scores, framework.log_model(model, features, predicted)


def log_test_split(rows: pd.DataFrame) -> None:
    """The held-out rows' digest and count, logged with the active run (as params: they cannot be
    changed afterwards). Later stages (other processes, other CI jobs) re-derive the rows from the data
    file and check them against it (data.held_out); the rows themselves are not logged, so that a
    reader of runs cannot download real data."""
    mlflow.log_params({data.TEST_DIGEST_PARAM: data.rows_digest(rows), data.TEST_ROWS_PARAM: len(rows)})
