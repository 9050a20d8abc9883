"""What a bake's code imports, its own lock installs.

Most template tests run a bake with the template's shared venv, which holds every framework's packages at
once: a module a bake imports but its lock lacks passes there and fails for the user after `make setup`.
This test reads (no install, no import of the bake) the imports of each framework's src/ and tests/,
maps each module to the distributions that provide it in the shared venv, and fails naming any whose
distribution the bake's requirements.lock does not pin. test_user_install.py installs each bake for real.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import FRAMEWORKS

# Bakes with a lock of their own: every framework on the default task, and reinforcement learning.
LOCKED_BAKES = [{"framework": framework} for framework in FRAMEWORKS] + [
    {"task": "reinforcement", "framework": "pytorch"}
]

# APIs one library exposes but another distribution implements, which the first does not depend on: the
# import names the library, the lock must hold the other one too.
IMPLEMENTED_ELSEWHERE = {
    # TensorFlow 2.21 no longer depends on TensorBoard; without it tf.summary's writers are stubs that
    # raise "TensorBoard is not installed, missing implementation for tf.summary.scalar".
    "tensorflow.summary": "tensorboard",
    # torch does not depend on TensorBoard; this module imports it.
    "torch.utils.tensorboard": "tensorboard",
}

# Modules no pip distribution provides: they exist only inside another program's runtime.
RUNTIME_MODULES = {
    # Triton's Python backend (triton/python_model.py runs inside tritonserver, never in the project's venv).
    "triton_python_backend_utils",
}


@cache
def distributions_of() -> dict[str, frozenset[str]]:
    """Top-level module -> the distributions that install it, in this (the shared) venv."""
    return {
        module: frozenset(canonicalize_name(d) for d in dists)
        for module, dists in importlib.metadata.packages_distributions().items()
    }


def references(path: Path) -> set[str]:
    """Dotted names a file imports, plus the attribute chains it reads through an imported alias
    (`import tensorflow as tf; tf.summary.scalar(...)` gives `tensorflow.summary.scalar`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                found.add(name.name)
                aliases[name.asname or name.name.split(".")[0]] = name.name if name.asname else name.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            for name in node.names:
                found.add(f"{node.module}.{name.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            current: ast.expr = node
            while isinstance(current, ast.Attribute):
                chain.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id in aliases:
                found.add(".".join([aliases[current.id], *reversed(chain)]))
    return found


def locked(project: Path) -> set[str]:
    text = (project / "requirements.lock").read_text()
    return {canonicalize_name(m[1]) for m in re.finditer(r"^([A-Za-z0-9._-]+)==", text, re.MULTILINE)}


def optional(project: Path) -> set[str]:
    """Distributions of the extras a user installs on purpose (`.[ray]`, `.[azureml]`): code may import them,
    behind a message that names the extra; the dev extra is the lock's own."""
    extras = tomllib.loads((project / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    return {canonicalize_name(Requirement(r).name) for name, reqs in extras.items() if name != "dev" for r in reqs}


def missing_from_lock(project: Path) -> list[str]:
    """One line per module the bake's code reaches whose distribution its lock does not pin."""
    own = {path.stem for path in project.rglob("*.py")} | {path.name for path in project.rglob("*") if path.is_dir()}
    pinned, extras, provided = locked(project), optional(project), distributions_of()
    users: dict[str, set[str]] = {}
    for path in sorted([*(project / "src").rglob("*.py"), *(project / "tests").rglob("*.py")]):
        for name in references(path):
            users.setdefault(name, set()).add(str(path.relative_to(project)))
    problems = []
    for name, files in sorted(users.items()):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in own or top in RUNTIME_MODULES:
            continue
        where = ", ".join(sorted(files)[:3]) + (" ..." if len(files) > 3 else "")
        for api, dist in IMPLEMENTED_ELSEWHERE.items():
            if f"{name}.".startswith(f"{api}.") and canonicalize_name(dist) not in pinned:
                problems.append(f"{api} (in {where}) needs {dist}, which requirements.lock does not pin")
        if name != top:
            continue
        dists = provided.get(top)
        if dists is None:
            problems.append(f"{top} (in {where}): no distribution in the template's venv provides it")
        elif not dists & (pinned | extras):
            problems.append(
                f"{top} (in {where}) comes from {', '.join(sorted(dists))}, which requirements.lock does not pin"
            )
    return sorted(set(problems))


@pytest.mark.parametrize("options", LOCKED_BAKES, ids=lambda o: o.get("task", o["framework"]))
def test_every_module_a_bake_imports_is_in_its_lock(baked, options):
    project = baked(**options)
    problems = missing_from_lock(project)
    assert not problems, (
        f"{options}: the shared venv has these, a user's `make setup` would not (add the distribution to "
        "this framework's block of pyproject.toml, then run scripts/lock.sh):\n  " + "\n  ".join(problems)
    )
