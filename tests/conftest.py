"""Baking the template and running what it generates.

All baked projects share this venv: their dependencies are installed once (requirements-test.txt)
and each project's own package is put first on PYTHONPATH, so several bakes of the same package
name never shadow each other and nothing is re-resolved per bake.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

import tiers

TEMPLATE = Path(__file__).resolve().parents[1]
PACKAGE = "credit_model"
SLUG = "credit-model"
# The template's package, unrendered; the frameworks' registry (frameworks/__init__.py) is the tabular family's.
SOURCE = TEMPLATE / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}"
FRAMEWORKS_SOURCE = SOURCE / "tabular" / "frameworks"
FRAMEWORKS: list[str] = json.loads((TEMPLATE / "cookiecutter.json").read_text())["framework"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the fast tier only (tests/tiers.py): unit and static checks of the template and one bake",
    )
    parser.addoption("--timings", metavar="FILE", help="write each test's seconds to FILE (scripts/bench_suite.py)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fast: in the fast tier (`scripts/test.sh --fast`) and the full one")
    config.addinivalue_line("markers", "fast_only: the fast tier's stand-in for a check the full tier makes whole")
    if config.getoption("timings"):
        from suite_timing import CpuMeter, Recorder

        config.pluginmanager.register(CpuMeter(), "suite-cpu")
        if not hasattr(config, "workerinput"):  # xdist: the controller records
            config.pluginmanager.register(Recorder(Path(config.getoption("timings"))), "suite-timing")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # The fast tier does not import the other files (their imports alone take seconds).
    if config.getoption("fast") and tiers.is_test_file_outside_the_fast_tier(collection_path):
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks and before -k/-m deselect
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers.apply(config, items)


def framework_modules(table: str = "MODULES") -> dict[str, tuple[str, ...]]:
    """frameworks.MODULES (framework -> the modules it needs), read by the post-generation hook's own code;
    `table="IMPORTED"`: the imported models' frameworks, which every bake keeps."""
    spec = importlib.util.spec_from_file_location("post_gen_project", TEMPLATE / "hooks" / "post_gen_project.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook.framework_modules(FRAMEWORKS_SOURCE / "__init__.py", table)


def framework_module(name: str) -> Path:
    """Where a framework's module is: the tabular family's frameworks/, or its training/ for a training step
    only that framework runs (dp_sgd.py)."""
    for folder in (FRAMEWORKS_SOURCE, SOURCE / "tabular" / "training"):
        if (folder / f"{name}.py").is_file():
            return folder / f"{name}.py"
    raise LookupError(f"no module {name}.py in {FRAMEWORKS_SOURCE} or its training/ neighbour")


def bake(folder: Path, **context: str) -> Path:
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(folder), extra_context=context))


def project_env(project: Path, **extra: str) -> dict[str, str]:
    # No KERAS_BACKEND: a Keras project sets its own backend (frameworks.use_keras_backend).
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "GITHUB_", "KERAS_"))}
    env.update(
        PYTHONPATH=str(project / "src"),
        MLFLOW_DISABLE_TELEMETRY="true",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        **extra,
    )
    return env


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs a bake's code and the environment it runs in. By default the template's shared venv,
    the bake's src/ first on PYTHONPATH (project_env); test_user_install passes the bake's own .venv and a user's
    environment, to check a project installed as users install it with the same code as the shared venv's tests."""

    executable: str = sys.executable
    env: dict[str, str] | None = None  # None: project_env(project)

    def environment(self, project: Path, **extra: str) -> dict[str, str]:
        return project_env(project, **extra) if self.env is None else {**self.env, **extra}


SHARED = Interpreter()


def run(
    project: Path, *args: str, check: bool = True, timeout: float = 900, python: Interpreter = SHARED, **env: str
) -> subprocess.CompletedProcess:
    """`python <args>` inside the baked project, with its package importable."""
    result = subprocess.run(
        [python.executable, *args],
        cwd=project,
        env=python.environment(project, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"`{python.executable} {' '.join(args)}` in {project} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def cli(
    project: Path, *args: str, check: bool = True, python: Interpreter = SHARED, **env: str
) -> subprocess.CompletedProcess:
    return run(project, "-m", PACKAGE, *args, check=check, python=python, **env)


def held_out_rows(project: Path, run_id: str, folder: Path, python: Interpreter = SHARED) -> Path:
    """A run's test rows as its later stages get them (re-derived from the data file and checked against
    the digest the run logged: the run holds no rows), written to Parquet for a test to read."""
    path = folder / f"held-out-{run_id}.parquet"
    code = (
        f"from pathlib import Path; from {PACKAGE} import config, tracking; from {PACKAGE}.tabular.dataio import data; "
        "settings = config.load(Path('config.yaml')); client = tracking.connect(settings); "
        f"rows = data.held_out(settings, client.get_run({run_id!r}).data.params, {run_id!r}); "
        f"rows.to_parquet({str(path)!r}, index=False)"
    )
    run(project, "-c", code, python=python)
    return path


def wheel(project: Path, folder: Path) -> tuple[list[str], str]:
    """`pip wheel` of a baked project (no dependencies): the wheel's file names and its entry_points.txt."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(folder), str(project)],
        check=True,
        capture_output=True,
    )
    (built,) = folder.glob("*.whl")
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
        return names, archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()


def other_model(project: Path, path: Path) -> Path:
    """An ONNX model of the same contract from no run of the project (its tests' own tabular/contract_model.py):
    what a smoke test must refuse as the served model."""
    code = (
        "import sys; sys.path.insert(0, 'tests/tabular'); from contract_model import build; "
        f"from pathlib import Path; build(Path({str(path)!r}), 'binary')"
    )
    run(project, "-c", code)
    return path


_baked: dict[tuple, Path] = {}


@pytest.fixture(scope="session")
def baked(tmp_path_factory):
    """bake(**context) once per session per option set; tests must not modify what they get."""

    def get(**context: str) -> Path:
        key = tuple(sorted(context.items()))
        if key not in _baked:
            _baked[key] = bake(tmp_path_factory.mktemp("baked"), **context)
        return _baked[key]

    return get


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory) -> Path:
    """One mypy cache for the session (per xdist worker): the libraries every bake imports (NumPy, pandas,
    MLflow...) are analysed once; each bake's own modules are checked again (mypy compares their hashes)."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture(scope="session")
def project_with_model(tmp_path_factory, baked):
    """A copy of the default bake after one real `pipeline` (outputs/model.onnx, the run's test split in
    mlruns/); shared by the image, request-log and monitoring tests (the monitor's runs are added to
    its store; nothing else writes to it)."""
    project = shutil.copytree(baked(), tmp_path_factory.mktemp("pipeline-run") / SLUG)
    cli(project, "pipeline")
    return project


@pytest.fixture(scope="session")
def act_tools(tmp_path_factory) -> Path:
    """setup-python's tool cache for every act run of the session: one installed environment (act_support.py)."""
    from act_support import tool_cache

    return tool_cache(tmp_path_factory.mktemp("act-tools"))


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL of the module's own on loopback: the prediction log's database."""
    from servers import Postgres, postgres_bin

    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (scripts/system-packages.sh installs it)")
        pytest.skip("PostgreSQL binaries not found under /usr/lib/postgresql")
    server = Postgres(Path(tempfile.mkdtemp(prefix="mlops-postgres-"))).start()
    try:
        yield server
    finally:
        server.stop()
