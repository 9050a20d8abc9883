"""Tuned parameters: the step of a training run that takes the `tune` stage's search (tune.enabled).

One pipeline is one run, and tune comes before train: tune starts the run and saves its best params
(outputs/tune.json); train continues that run with model.params updated by them. `Tuned` is what
the stage hands over; how it finds a saved search that still holds is the stage's own (`current`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ... import family as families
from ...errors import UsageError
from ...stages import StageResult

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tuned(StageResult):
    """The `tune` stage's result: the run it started (None when tune is off) and the best trial's values."""

    best_params: dict[str, Any]  # the searched keys only ({} when tune is off)
    metric: str = ""
    value: float | None = None


def for_training(config: Config) -> Tuned | None:
    """The search `train` continues: tune's saved one while it holds for this config, else a new one
    (the stage runs now); None when tune.enabled is false."""
    if not config.tune.enabled:
        return None
    tune = families.current().stage("tune")
    found = tune.current(config) or tune.run(config)
    if not isinstance(found, Tuned) or found.run_id is None:
        raise UsageError("tune did not start a run for train to continue: run `tune` and read its log")
    return found


def with_best_params(config: Config, tuned: Tuned | None) -> Config:
    """`config` with the search's values over model.params (the keys it did not search keep theirs)."""
    if tuned is None:
        return config
    log.info("continuing run %s that tune started, with its best params %s", tuned.run_id, tuned.best_params)
    params = {**config.model.params, **tuned.best_params}
    return config.model_copy(update={"model": config.model.model_copy(update={"params": params})})
