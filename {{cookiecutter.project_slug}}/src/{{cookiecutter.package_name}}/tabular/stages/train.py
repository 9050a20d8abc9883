"""train: start the run, fit the configured framework's model, log everything the later stages need."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import mlflow
import pandas as pd

from ... import lineage, tracking, transfer
from ...errors import UsageError
from ...stages import StageResult
from .. import frameworks
from ..config import Config
from ..dataio import data
from ..pure import group_stats, metrics, predictions
from . import tune as tuned_search

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trained(StageResult):
    run_id: str
    model_uri: str


def log_test_split(rows: pd.DataFrame) -> None:
    """The held-out rows' digest and count, logged with the active run (as params: they cannot be
    changed afterwards). Later stages (other processes, other CI jobs) re-derive the rows from the data
    file and check them against it (data.held_out); the rows themselves are not logged, so that a
    reader of runs cannot download real data."""
    mlflow.log_params({data.TEST_DIGEST_PARAM: data.rows_digest(rows), data.TEST_ROWS_PARAM: len(rows)})


def privacy_params(config: Config) -> dict[str, object]:
    """`privacy.enabled` on every run, so the gate and the model card can tell a run trained without DP."""
    private = config.privacy
    return {
        lineage.PRIVACY_ENABLED: private.enabled,
        **(
            {
                "privacy.target_epsilon": private.target_epsilon,
                "privacy.target_delta": private.target_delta,
                "privacy.max_grad_norm": private.max_grad_norm,
            }
            if private.enabled
            else {}
        ),
        **({"privacy.report_epsilon": private.report_epsilon} if private.report_epsilon is not None else {}),
    }


def run(config: Config, run_id: str | None = None) -> Trained:
    """Starts a new run, or continues the one `tune` started (with its best params): `run_id` is not used.
    Runs after `validate` passed on this data file (PIPELINE)."""
    client = tracking.connect(config)
    tuned = tuned_search.for_training(config)
    if tuned is not None:
        log.info("continuing run %s that tune started, with its best params %s", tuned.run_id, tuned.best_params)
        config = config.model_copy(
            update={"model": config.model.model_copy(update={"params": {**config.model.params, **tuned.best_params}})}
        )
    validated = config.outputs / lineage.VALIDATION_FILE
    frame = data.read_table(config.data_path, config.data.csv)
    schema = data.schema(config, frame)
    split = data.split(frame, schema, config.split.test_size, config.split.seed)
    del frame  # the split holds its own copies of the rows: one table in memory, not two
    framework = frameworks.load(config.model.framework)
    # Before the run starts: a reference that does not resolve records no run.
    if config.model.init_from and config.privacy.enabled:
        raise UsageError(
            "model.init_from with privacy.enabled: DP-SGD trains from scratch here (the base model's own training "
            "is not covered by the budget); remove one of them"
        )
    base = (
        transfer.resolve(client, config.model.init_from, config.model.framework, config.model.init_from_trust)
        if config.model.init_from
        else None
    )
    shared = group_stats.release(config, split.train, schema) if config.privacy.report_epsilon is not None else None

    started = (
        mlflow.start_run(run_id=tuned.run_id)
        if tuned is not None
        else mlflow.start_run(experiment_id=tracking.experiment_id(config, client))
    )
    with started as active:
        run_id = active.info.run_id
        log.info("run %s %s in %s", run_id, "continued" if tuned else "started", mlflow.get_tracking_uri())
        mlflow.set_tags(
            {
                lineage.GIT_SHA: lineage.git_sha(config.root),
                lineage.SOURCE_REF: lineage.source_ref(),
                lineage.FRAMEWORK: config.model.framework,
                lineage.TASK: config.task,
            }
        )
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
                **privacy_params(config),
            }
        )
        if base is not None:
            mlflow.log_params(base.lineage())
            mlflow.set_tags(base.lineage())
        mlflow.log_artifact(str(validated), lineage.VALIDATION_FOLDER)
        mlflow.log_dict(schema.as_dict(), lineage.SCHEMA_ARTIFACT)
        mlflow.set_tag(lineage.stage_tag("validate"), lineage.DONE)

        if shared is not None:
            mlflow.log_dict(shared, lineage.GROUP_STATS_ARTIFACT)
        train_features = data.features(split.train, schema)
        train_target = data.target(split.train, schema)
        if base is not None:
            log.info("starting from %s (run %s, version %s)", base.reference, base.run_id, base.version or "-")
            model = framework.train_from(
                base,
                framework.load_model(base.model_uri),
                train_features,
                train_target,
                schema,
                config.model,
                config.split,
            )
        elif config.privacy.enabled:
            model = framework.train_private(
                train_features, train_target, schema, config.model, config.split, privacy=config.privacy
            )
        else:
            model = framework.train(train_features, train_target, schema, config.model, config.split)
        predicted = predictions.in_chunks(lambda rows: framework.predict(model, rows), train_features)
        scores = metrics.compute(
            config.task, data.target(split.train, schema).to_numpy(), predicted, framework.classes(model)
        )
        mlflow.log_metrics({f"train.{name}": value for name, value in scores.items()})
        model_uri = framework.log_model(model, train_features, predicted)
        mlflow.set_tags({lineage.MODEL_URI: model_uri, lineage.MODEL_CLASSES: json.dumps(framework.classes(model))})

        log_test_split(split.test)
        mlflow.set_tag(lineage.stage_tag("train"), lineage.DONE)
        # Only a finished run becomes the one later stages attach to.
        lineage.RunRecord(run_id, active.info.experiment_id, tracking.tracking_uri(config)).save(config.outputs)
    log.info(
        "trained %s; train %s",
        config.model.framework,
        ", ".join(f"{name}={value:.4f}" for name, value in scores.items()),
    )
    return Trained(run_id=run_id, model_uri=model_uri)
