"""The stages, in pipeline order, and how they run: each is a module here with `run(config, run_id)`.

A stage is one module plus one line in PIPELINE. `run` takes the typed config and the run to attach
to (None: the one train recorded in outputs/run.json) and returns a StageResult, whose `run_id` is
the run it worked on. The CLI builds one subcommand per stage from PIPELINE; modules are imported
only when their stage runs, so `--help` never loads mlflow or Great Expectations.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageResult:
    """What every stage returns; stages subclass it with what they produced."""

    run_id: str | None  # the MLflow run it worked on (None: validate, which runs before there is one)


@dataclass(frozen=True)
class Stage:
    name: str  # the module in this package, and the CLI subcommand
    help: str
    attaches: bool = True  # works on the run train started (takes --run-id)
    needs: str | None = None  # a stage to run first when its result for this input is missing
    remote: bool = False  # can run as a Ray job on a cluster ($RAY_ADDRESS or --ray-address; ops/ray_job.py)

    def run(self, config: Config, run_id: str | None = None, **options: str) -> StageResult:
        """Run the stage; `options` are the stage's own keyword arguments (register's onnx_sha256)."""
        if self.needs and STAGES[self.needs].current(config) is None:
            log.info("no current %s result for this input: running %s first", self.needs, self.needs)
            STAGES[self.needs].run(config)
        started = time.perf_counter()
        log.info("== %s", self.name)
        result = import_module(f"{__name__}.{self.name}").run(config, run_id, **options)
        log.info("== %s done in %.1f s", self.name, time.perf_counter() - started)
        return result

    def current(self, config: Config) -> StageResult | None:
        """The stage's saved result when it still holds for this config's input, else None."""
        return import_module(f"{__name__}.{self.name}").current(config)


PIPELINE = (
{%- if cookiecutter.task == "reinforcement" %}
    Stage("validate", "check the environment's spaces against config.yaml", attaches=False),
    Stage("train", "start the MLflow run and train the PPO policy with RLlib", attaches=False, needs="validate"),
    Stage("evaluate", "mean, worst and best return of seeded greedy episodes"),
{%- else %}
    Stage("validate", "check the input data with Great Expectations", attaches=False),
    Stage(
        "tune",
        "search model.params with Ray Tune (tune.enabled), trials as child runs",
        attaches=False,
        needs="validate",
        remote=True,
    ),
    Stage(
        "train",
        "start the MLflow run (or continue tune's) and train the model",
        attaches=False,
        needs="validate",
        remote=True,
    ),
    Stage("evaluate", "metrics, fairness audit and plots on the held-out rows"),
    Stage("explain", "global feature importance and local explanations (SHAP) on held-out rows"),
{%- endif %}
    Stage("gate", "check thresholds and no-regression against the champion"),
    Stage("export", "convert to ONNX and check onnxruntime parity"),
    Stage("register", "register a run that passed gate and parity, as 'challenger'"),
)
STAGES = {stage.name: stage for stage in PIPELINE}


def run_pipeline(config: Config) -> list[StageResult]:
    """All stages in order in one process; the run train starts passes to the rest."""
    started = time.perf_counter()
    results: list[StageResult] = []
    run_id = None
    for stage in PIPELINE:
        results.append(stage.run(config, run_id))
        run_id = results[-1].run_id or run_id
    log.info(
        "pipeline done in %.1f s: %s (run %s)",
        time.perf_counter() - started,
        " -> ".join(stage.name for stage in PIPELINE),
        run_id,
    )
    return results
