"""Every option combination bakes into a clean project: rendered, trimmed to its choices, lint-clean."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest
import yaml

from conftest import FRAMEWORKS, PACKAGE, framework_modules, wheel

TASKS = ["binary", "multiclass", "regression"]
TEXT = {".py", ".yaml", ".yml", ".toml", ".md", ".txt", ".cfg", ".sh", ".json", ".ipynb", ""}


def text_files(project):
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in TEXT:
            yield path


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", TASKS)
def test_every_option_bakes_clean(baked, task, framework):
    project = baked(task=task, framework=framework)
    for path in text_files(project):
        text = path.read_text()
        assert "cookiecutter." not in text or path.name == ".cruft.json", f"unrendered Jinja in {path}"
        assert "{%" not in text, f"unrendered Jinja in {path}"
        if path.suffix in {".json", ".ipynb"}:
            json.loads(text)  # still JSON once rendered (the notebook, the dev container)

    settings = yaml.safe_load((project / "config.yaml").read_text())
    assert settings["task"] == task and settings["model"]["framework"] == framework
    assert [p.name for p in (project / "data").glob("*.csv")] == [f"credit_{task}.csv"]

    # A framework's modules are in the tabular family's frameworks/, or in its training/ for a training step
    # only that framework runs (DP-SGD: PyTorch); the steps every framework runs stay in every tabular bake.
    family = project / "src" / PACKAGE / "tabular"
    modules = {p.stem for p in (family / "frameworks").glob("*.py")} - {"__init__", "base"}
    shared_steps = {"tuned", "tuning", "transfer", "privacy"}
    steps = {p.stem for p in (family / "training").glob("*.py")} - {"__init__"}
    imported = {module for modules in framework_modules("IMPORTED").values() for module in modules}
    assert modules | (steps - shared_steps) == set(framework_modules()[framework]) | imported
    assert shared_steps <= steps

    dependencies = " ".join(tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"])
    assert ("torch==" in dependencies) == (framework in ("pytorch", "keras"))
    assert ("keras" in dependencies) == (framework in ("keras", "tensorflow"))
    assert ("tensorflow" in dependencies) == (framework == "tensorflow")
    assert ("ebm2onnx" in dependencies and "interpret-core" in dependencies) == (framework == "ebm")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_generated_code_is_formatted_lint_clean_and_type_checked(baked, framework, mypy_cache):
    """What the project's CI lint job runs: ruff format --check, ruff check, mypy (its own config)."""
    project = baked(task="binary", framework=framework)
    for command in (
        ["ruff", "format", "--no-cache", "--check", "src", "tests", "bench", "notebooks"],
        ["ruff", "check", "--no-cache", "src", "tests", "bench", "notebooks"],
        ["mypy", "--cache-dir", str(mypy_cache), "src"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", *command], cwd=project, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-4000:]}{result.stderr[-2000:]}"


# Package names sorting before and after every helper module of a bake's tests/ (contract_model.py...):
# isort puts the package and those helpers in sections whose order must not depend on the name.
NAMES = ["aaa_model", "arch_sklearn", "zz_model"]


def test_lint_is_clean_whatever_the_package_name(baked):
    helpers = {path.stem for path in (baked() / "tests").rglob("*.py") if not path.stem.startswith("test_")} - {
        "conftest"
    }
    assert helpers and min(NAMES) < min(helpers) and max(helpers) < max(NAMES), f"NAMES do not surround {helpers}"
    for name in NAMES:
        project = baked(package_name=name)
        result = subprocess.run(
            ["make", "lint", f"PYTHON={sys.executable}"], cwd=project, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"`make lint` of package {name}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"


def test_project_builds_a_wheel_with_its_console_script(baked, tmp_path):
    names, entry_points = wheel(baked(), tmp_path)
    assert f"{PACKAGE}/stages/gate.py" in names
    assert f"credit-model = {PACKAGE}.cli:main" in entry_points
