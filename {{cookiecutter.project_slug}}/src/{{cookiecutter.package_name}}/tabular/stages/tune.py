"""tune: search model.params with Ray Tune; start the pipeline's run, each trial a child run of it.

Opt-in (config.yaml `tune.enabled`). One pipeline is one run, and tune comes before train, so tune
starts the run and `train` continues it (outputs/tune.json names it, with the best params; train's
step tabular/training/tuned.py takes them): the trials appear nested under the run that then holds
the model, the gate and the export. The trials train on the training rows minus a validation split
(split.validation_size) and are scored there: the test rows stay unseen until `evaluate`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

from ... import lineage
from ...errors import CheckFailed
from ..config import Config
from ..dataio import data
from ..training.tuned import Tuned

if TYPE_CHECKING:  # with tune.enabled false (the default) the stage imports neither mlflow nor the search
    from mlflow.tracking import MlflowClient

    from ..training import tuning

log = logging.getLogger(__name__)


def current(config: Config) -> Tuned | None:
    """The saved search, when it was made for exactly this data and config and its run is not trained yet.

    A run holds one model: once train finished in it, the next `train` needs a new run, so a new search.
    """
    saved = config.outputs / lineage.TUNE_FILE
    if not config.tune.enabled or not saved.is_file():
        return None
    import mlflow

    from ... import tracking

    record = json.loads(saved.read_text())
    if record.get("fingerprint") != fingerprint(config):
        return None
    client = tracking.connect(config)
    try:
        run = client.get_run(record["run_id"])
    except mlflow.exceptions.MlflowException:
        return None
    if run.data.tags.get(lineage.stage_tag("train")) == lineage.DONE:
        return None
    return Tuned(
        run_id=record["run_id"], best_params=record["best_params"], metric=record["metric"], value=record["value"]
    )


def fingerprint(config: Config) -> str:
    """What the search depended on: a saved result holds only while all of it is unchanged."""
    from ... import tracking

    inputs = {
        "data": data.fingerprint(config.data_path),
        "task": config.task,
        "model": config.model.model_dump(mode="json"),
        "split": config.split.model_dump(mode="json"),
        "tune": config.tune.model_dump(mode="json"),
        "tracking": tracking.tracking_uri(config),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def run(config: Config, run_id: str | None = None) -> Tuned:
    """Starts the pipeline's run (`run_id` is not used); nothing when tune.enabled is false."""
    if not config.tune.enabled:
        log.info("tune.enabled is false in config.yaml: train uses model.params as written")
        return Tuned(run_id=None, best_params={})
    import mlflow

    from ... import tracking
    from ..training import tuning

    client = tracking.connect(config)
    metric, mode = tuning.metric_and_mode(config)
    frame = data.read_table(config.data_path, config.data.csv)
    schema = data.schema(config, frame)
    split = data.split(frame, schema, config.split.test_size, config.split.seed)
    del frame
    # The same carving as the test split, from the training rows: train's rows, minus those trials are scored on.
    tuning_rows = data.split(split.train, schema, config.split.validation_size, config.split.seed)

    experiment = tracking.experiment_id(config, client)
    with mlflow.start_run(experiment_id=experiment) as active:
        parent = active.info.run_id
        log.info("run %s started in %s: %d trials of %s", parent, mlflow.get_tracking_uri(), config.tune.trials, metric)
        mlflow.log_params(
            {
                "tune.trials": config.tune.trials,
                "tune.metric": f"{tuning.PREFIX}{metric}",
                "tune.mode": mode,
                "tune.space": json.dumps({k: v.model_dump(exclude_none=True) for k, v in config.tune.space.items()})[
                    :6000
                ],
            }
        )
        trials = tuning.search(config, tuning_rows.train, tuning_rows.test, schema)
        children = record_trials(client, experiment, parent, trials)
        mlflow.log_dict(
            {
                "metric": metric,
                "mode": mode,
                "trials": [asdict(t) | {"run_id": i} for t, i in zip(trials, children, strict=True)],
            },
            lineage.TUNE_TRIALS_ARTIFACT,
        )
        chosen = best(trials, metric, mode)
        mlflow.log_params({f"tune.best.{key}": value for key, value in chosen.params.items()})
        mlflow.log_metric(f"tune.best.{tuning.PREFIX}{metric}", chosen.scores[metric])
        mlflow.set_tag(lineage.stage_tag("tune"), lineage.DONE)
        failed = sum(trial.error is not None for trial in trials)
        log.info(
            "tune: best %s=%.4f with %s (%d trials, %d failed)",
            metric,
            chosen.scores[metric],
            chosen.params,
            len(trials),
            failed,
        )
        result = Tuned(run_id=parent, best_params=chosen.params, metric=metric, value=chosen.scores[metric])
        save(config, result, active.info.experiment_id)
    return result


def record_trials(client: MlflowClient, experiment_id: str, parent: str, trials: list[tuning.Trial]) -> list[str]:
    """One finished (or failed) child run per trial, nested under `parent`; returns their ids."""
    import mlflow
    from mlflow.entities import Metric, Param, RunStatus

    from ..training import tuning

    ids = []
    for number, trial in enumerate(trials):
        child = client.create_run(
            experiment_id,
            start_time=int(trial.started * 1000),
            tags={lineage.PARENT_RUN: parent, lineage.TUNE_TRIAL: str(number), "mlflow.runName": f"trial-{number}"},
        )
        run_id = child.info.run_id
        at = int(trial.ended * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(f"{tuning.PREFIX}{name}", value, at, 0) for name, value in trial.scores.items()],
            params=[Param(f"model.{key}", str(value)) for key, value in trial.params.items()],
            tags=[] if trial.error is None else [mlflow.entities.RunTag("tune.error", trial.error[:5000])],
        )
        status = RunStatus.FINISHED if trial.error is None else RunStatus.FAILED
        client.set_terminated(run_id, RunStatus.to_string(status), end_time=at)
        ids.append(run_id)
    return ids


def best(trials: list[tuning.Trial], metric: str, mode: str) -> tuning.Trial:
    scored = [trial for trial in trials if metric in trial.scores]
    if not scored:
        errors = sorted({trial.error or f"no {metric!r} reported" for trial in trials})
        raise CheckFailed(
            f"tune: none of {len(trials)} trials scored {metric!r}: {'; '.join(errors)[:2000]}. "
            "Check tune.space's keys against model.params (and tune.metric against the task's metrics)"
        )
    pick = max if mode == "max" else min
    return pick(scored, key=lambda trial: trial.scores[metric])


def save(config: Config, result: Tuned, experiment_id: str) -> None:
    config.outputs.mkdir(parents=True, exist_ok=True)
    record = asdict(result) | {"experiment_id": experiment_id, "fingerprint": fingerprint(config)}
    (config.outputs / lineage.TUNE_FILE).write_text(json.dumps(record, indent=2) + "\n")
