"""The stage contract and how stages run: each stage is a module with `run(config, run_id)` and `current(config)`.

A family lists its stages in pipeline order (family.Family.pipeline, made by family_pipeline below: its
own modules, and the core's gate and register); a stage is one module plus one line there. What every
family's train, evaluate and export record the same way is in this folder's train.py, evaluate.py and
export.py. `run` takes the typed config and the run to attach
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

from .. import family as families

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageResult:
    """What every stage returns; stages subclass it with what they produced."""

    run_id: str | None  # the MLflow run it worked on (None: validate, which runs before there is one)


@dataclass(frozen=True)
class Stage:
    name: str  # the CLI subcommand
    help: str
    module: str  # its module, dotted from the package (`stages.gate`, `tabular.stages.train`)
    attaches: bool = True  # works on the run train started (takes --run-id)
    needs: str | None = None  # a stage to run first when its result for this input is missing
    remote: bool = False  # can run as a Ray job on a cluster ($RAY_ADDRESS or --ray-address; ops/ray_job.py)

    def run(self, config: Config, run_id: str | None = None, **options: str) -> StageResult:
        """Run the stage; `options` are the stage's own keyword arguments (register's onnx_sha256)."""
        if self.needs and (needed := families.current().stage(self.needs)).current(config) is None:
            log.info("no current %s result for this input: running %s first", self.needs, self.needs)
            needed.run(config)
        started = time.perf_counter()
        log.info("== %s", self.name)
        result = import_module(f"{families.PACKAGE}.{self.module}").run(config, run_id, **options)
        log.info("== %s done in %.1f s", self.name, time.perf_counter() - started)
        return result

    def current(self, config: Config) -> StageResult | None:
        """The stage's saved result when it still holds for this config's input, else None."""
        return import_module(f"{families.PACKAGE}.{self.module}").current(config)


# The core's stages, which every family's pipeline ends with.
GATE = Stage("gate", "check thresholds and no-regression against the champion", "stages.gate")
REGISTER = Stage("register", "register a run that passed gate and parity, as 'challenger'", "stages.register")


def own(family: str, name: str, help: str, *, opens_run: bool = False, remote: bool = False) -> Stage:
    """A family's own stage, the module `<family>.stages.<name>`. `opens_run`: it starts (or continues) the
    MLflow run once validate passed (train, tune), so it takes no --run-id."""
    module = f"{family}.stages.{name}"
    if opens_run:
        return Stage(name, help, module, attaches=False, needs="validate", remote=remote)
    return Stage(name, help, module, remote=remote)


def family_pipeline(family: str, validate: str, *stages: Stage) -> tuple[Stage, ...]:
    """Every family's pipeline: its validate (`validate` is its help; it runs before there is a run), its own
    `stages` (train first), the core's gate, its export (to ONNX, parity-checked) and the core's register."""
    first = Stage("validate", validate, f"{family}.stages.validate", attaches=False)
    export = own(family, "export", "convert to ONNX and check onnxruntime parity")
    return (first, *stages, GATE, export, REGISTER)


def pipeline() -> tuple[Stage, ...]:
    """This project's stages in order (its family's)."""
    return families.current().pipeline


def run_pipeline(config: Config) -> list[StageResult]:
    """All stages in order in one process; the run train starts passes to the rest."""
    from .. import tracking  # imports MLflow: only when stages run

    stages = pipeline()
    tracking.start_creating_store(config)  # made in another process while the first stages run
    started = time.perf_counter()
    results: list[StageResult] = []
    run_id = None
    for stage in stages:
        results.append(stage.run(config, run_id))
        run_id = results[-1].run_id or run_id
    log.info(
        "pipeline done in %.1f s: %s (run %s)",
        time.perf_counter() - started,
        " -> ".join(stage.name for stage in stages),
        run_id,
    )
    return results
