"""A task family (tabular/, rl/) is one folder that registers itself with the core here.

The core never imports a family by name: `current()` finds the one folder of this package that has a
`family.py` module with a FAMILY (the post-generation hook keeps exactly one) and reads what it
registers: its config model, its stages in pipeline order, its gate checks and its CLI commands. An
image family would be one more folder with its own family.py; nothing in the core changes.

Routes a family adds to the server are registered in its folder's serving/__init__.py (EXTENSIONS), not
here: the serving image holds the core's serving/ and each family's serving/ only, so the server finds them
by folder (serving/extensions.py) as current() finds this module.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .config import Config
    from .stages import Stage
    from .stages.checks import GateCheck

PACKAGE = __package__ or __name__.rpartition(".")[0]

# (config.yaml as read, --data, --target, --init-from) -> config.yaml with the command line's values in it.
Overrides = Callable[[dict[str, Any], Path | None, str | None, str | None], dict[str, Any]]
# (the model's schema, --sample, --config, rows) -> rows for a container's smoke test, or None: made from the schema.
SmokeRows = Callable[[dict, Path | None, Path, int], list[dict] | None]


def no_smoke_rows(schema: dict, sample: Path | None, config: Path, rows: int) -> list[dict] | None:
    """A family without tables of its own: the smoke test's rows are made from the schema."""
    return None


def higher_is_better(metric: str) -> bool:
    """The default direction of a metric for the no-regression check: larger is better."""
    return False


@dataclass(frozen=True)
class Family:
    name: str  # its folder, and the task in config.yaml's `task` (or its group of tasks)
    config: type[Config]  # config.yaml's model: the core's sections plus the family's own
    pipeline: tuple[Stage, ...]  # in order; the CLI makes one subcommand per stage
    overrides: Overrides
    # Checks `gate` runs after the core's (thresholds, no-regression); one signature (stages/checks.py).
    gate_checks: tuple[GateCheck, ...] = ()
    # Modules (dotted, from the package) with a COMMANDS table {name: (help, add_arguments, run)}.
    commands: tuple[str, ...] = ()
    lower_is_better: Callable[[str], bool] = higher_is_better  # for gate's no-regression check
    smoke_rows: SmokeRows = no_smoke_rows  # ops/container.py's smoke test
    noisy_loggers: tuple[str, ...] = ()  # libraries whose INFO lines the CLI hides
    stages: dict[str, Stage] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", {stage.name: stage for stage in self.pipeline})

    def stage(self, name: str) -> Stage:
        if name not in self.stages:
            raise UsageError(f"no stage {name!r} in a {self.name} project (its stages: {', '.join(self.stages)})")
        return self.stages[name]


def names() -> list[str]:
    """The folders of this package that are task families (each has a family.py)."""
    folders = [Path(folder) for folder in import_module(PACKAGE).__path__]
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(folder) for folder in folders])
        if info.ispkg and any((folder / info.name / "family.py").is_file() for folder in folders)
    )


def folder() -> str:
    """The one family folder the project was generated with."""
    found = names()
    if len(found) != 1:
        raise UsageError(
            f"expected one task family folder in src/{PACKAGE} (a folder with a family.py), found "
            f"{found or 'none'}: bake the project again, or remove the family it does not use"
        )
    return found[0]


@cache
def current() -> Family:
    """This project's family: what its folder's family.py registers."""
    name = folder()
    family = import_module(f"{PACKAGE}.{name}.family").FAMILY
    if not isinstance(family, Family):
        raise UsageError(f"src/{PACKAGE}/{name}/family.py: FAMILY is not a family.Family")
    return family


def stage_list() -> tuple[Stage, ...]:
    """The family's stages in order, read from its stages/__init__.py alone (its PIPELINE, which imports
    nothing but the core's Stage): no config model or other dependency is imported, so the post-generation
    hook and `stages --write` can run where only the standard library is installed."""
    return import_module(f"{PACKAGE}.{folder()}.stages").PIPELINE
