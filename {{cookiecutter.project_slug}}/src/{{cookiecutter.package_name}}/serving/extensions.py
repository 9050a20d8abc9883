"""Routes a task family adds to the server, found by folder as the family itself is (family.py).

A family with routes of its own (tabular's encrypted inference) has a `serving/` folder whose __init__.py
lists in EXTENSIONS the modules, dotted from the package, that each define
`extension(model, settings, env) -> Extension | None` (None: off under these settings). The core never names
a family, and needs nothing else of it: the serving image ships each family's serving/ folder beside this
one (.dockerignore) and no other part of the family, so a family.py cannot be read there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .model import Model
    from .settings import Settings

PACKAGE = (__package__ or __name__).rpartition(".")[0]


class Extension(Protocol):
    routes: frozenset[str]  # the paths it serves, named in the request metrics

    def add_routes(self, app: FastAPI) -> None: ...


def registered() -> list[str]:
    """The modules every family folder's serving/__init__.py lists in EXTENSIONS."""
    modules: list[str] = []
    for root in import_module(PACKAGE).__path__:
        for folder in sorted(Path(root).iterdir()):
            if folder.name != "serving" and (folder / "serving" / "__init__.py").is_file():
                modules += import_module(f"{PACKAGE}.{folder.name}.serving").EXTENSIONS
    return modules


def load(model: Model, settings: Settings, env: Mapping[str, str] | None = None) -> list[Extension]:
    """The extensions that are on for this model and environment ($ENCRYPTED_INFERENCE, ...); each may refuse
    the model (a ModelError: the server does not start)."""
    found = []
    for module in registered():
        extension = import_module(f"{PACKAGE}.{module}").extension(
            model, settings, dict(os.environ if env is None else env)
        )
        if extension is not None:
            found.append(extension)
    return found
