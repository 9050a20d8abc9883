"""Ray Tune's part of the `tune` stage: the search space from config.yaml, one trial per parameter set.

A trial trains the configured framework (Framework.train, as `train` does) on the training rows with
model.params updated by the trial's values, and scores it with metrics.compute on the validation rows.
Trials report their scores and times only: the stage, in the driver, records them as MLflow child runs,
so workers need no tracking credentials and the store sees one writer.
Ray is imported here only, and only when the stage runs: it is the optional extra `ray`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ... import lineage
from ...config import SearchParam
from ...errors import UsageError
from .. import frameworks
from ..config import Config
from ..dataio import data
from ..dataio.data import Schema
from ..pure import metrics, predictions

if TYPE_CHECKING:
    from ray.tune import ResultGrid

log = logging.getLogger(__name__)

# Memory Ray may take for shared objects (the training and validation rows) on a local instance;
# beyond it Ray spills to disk rather than failing.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
# A trial's scores as reported to Tune (and logged on its child run): apart from Ray's own bookkeeping.
PREFIX = "validation."


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]  # the searched values only (model.params supplies the rest)
    scores: dict[str, float]  # metrics.compute on the validation rows ({} when the trial failed)
    started: float  # epoch seconds
    ended: float
    error: str | None = None


def import_ray() -> Any:
    try:
        import ray
        from ray import tune  # noqa: F401 (the extra installs both; a partial install fails here, not mid-run)
    except ModuleNotFoundError as error:
        raise UsageError(
            f"tune needs Ray, which is not installed ({error.name}): pip install -e '.[ray]' "
            "(or set tune.enabled: false in config.yaml)"
        ) from error
    return ray


def default_metric(task: str) -> str:
    return {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}[task]


def metric_and_mode(config: Config) -> tuple[str, str]:
    metric = config.tune.metric or default_metric(config.task)
    mode = config.tune.mode or ("min" if metrics.lower_is_better(metric) else "max")
    return metric, mode


def search_space(space: dict[str, SearchParam]) -> dict[str, Any]:
    """config.yaml's tune.space as Ray Tune's sampling domains."""
    from ray import tune

    domains: dict[str, Any] = {}
    for key, param in space.items():
        if param.type == "choice":
            domains[key] = tune.choice(list(param.values or []))
            continue
        low, high = float(param.low or 0), float(param.high or 0)
        if param.type == "uniform":
            domains[key] = tune.uniform(low, high)
        elif param.type == "loguniform":
            domains[key] = tune.loguniform(low, high)
        else:  # int: `high` included, as written in config.yaml (randint excludes its upper bound)
            domains[key] = tune.randint(int(low), int(high) + 1)
    return domains


def score(
    config: Config, params: dict[str, Any], train: pd.DataFrame, valid: pd.DataFrame, schema: Schema
) -> dict[str, float]:
    """The framework trained with `params` over model.params, its metrics on the validation rows."""
    framework = frameworks.load(config.model.framework)
    settings = config.model.model_copy(update={"params": {**config.model.params, **params}})
    model = framework.train(data.features(train, schema), data.target(train, schema), schema, settings, config.split)
    features = data.features(valid, schema)
    predicted = predictions.in_chunks(lambda rows: framework.predict(model, rows), features)
    return metrics.compute(config.task, data.target(valid, schema).to_numpy(), predicted, framework.classes(model))


def _trial(params: dict[str, Any], *, config: Config, train: pd.DataFrame, valid: pd.DataFrame, schema: Schema) -> None:
    """What each Ray Tune trial runs, in a Ray worker."""
    from ray import tune

    started = time.time()
    scores = score(config, params, train, valid, schema)
    tune.report(
        {**{f"{PREFIX}{name}": value for name, value in scores.items()}, "started": started, "ended": time.time()}
    )


def _connect(config: Config) -> bool:
    """Ray for the trials: the job's cluster inside a Ray job, else a local instance; True when started here."""
    ray = import_ray()
    # In a Ray job (ops/ray_job.py), Ray is already there: the trials join the job's cluster.
    if os.environ.get(lineage.IN_RAY_JOB):
        ray.init(log_to_driver=False)  # the job's own cluster ($RAY_ADDRESS, set by Ray in the job)
        return False
    # address="local": a private instance even when $RAY_ADDRESS names a cluster (that one takes jobs, below).
    ray.init(
        address="local",
        num_cpus=config.tune.num_cpus,
        object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        include_dashboard=False,
        log_to_driver=False,
    )
    return True


def search(config: Config, train: pd.DataFrame, valid: pd.DataFrame, schema: Schema) -> list[Trial]:
    """config.tune.trials trials of Ray Tune's random search (seeded), at most max_concurrent at once."""
    ray = import_ray()
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    metric, mode = metric_and_mode(config)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no progress table per trial in the stage's log
    started_here = _connect(config)
    try:
        with tempfile.TemporaryDirectory(prefix="tune-") as storage:
            tuner = tune.Tuner(
                tune.with_parameters(_trial, config=config, train=train, valid=valid, schema=schema),
                param_space=search_space(config.tune.space),
                tune_config=tune.TuneConfig(
                    metric=PREFIX + metric,
                    mode=mode,
                    num_samples=config.tune.trials,
                    # The random search itself bounds concurrency (Tune ignores max_concurrent_trials for it).
                    search_alg=BasicVariantGenerator(
                        max_concurrent=config.tune.max_concurrent, random_state=config.tune.seed
                    ),
                ),
                run_config=tune.RunConfig(storage_path=storage, name="tune", verbose=0),
            )
            return trials(tuner.fit(), list(config.tune.space))
    finally:
        if started_here:
            ray.shutdown()


def trials(grid: ResultGrid, keys: list[str]) -> list[Trial]:
    found = []
    for index in range(len(grid)):  # ResultGrid is indexable, not typed as iterable
        result = grid[index]
        params = {key: _plain((result.config or {})[key]) for key in keys}
        reported = result.metrics or {}
        scores = {k.removeprefix(PREFIX): float(v) for k, v in reported.items() if k.startswith(PREFIX)}
        now = time.time()
        error = None if result.error is None else f"{type(result.error).__name__}: {result.error}"
        found.append(
            Trial(
                params=params,
                scores=scores if error is None else {},
                started=float(reported.get("started", now)),
                ended=float(reported.get("ended", now)),
                error=error,
            )
        )
    return found


def _plain(value: Any) -> Any:
    """numpy scalars from Ray's samplers as plain numbers, so params log and serialise as written."""
    return value.item() if hasattr(value, "item") else value
