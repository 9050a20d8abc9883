"""Every lock installed as a user installs it: a fresh bake, `make setup` (its own .venv from its own
requirements.lock), the test steps of the bake's own CI job, then `make pipeline`, in that venv. For every
framework but sklearn the pipeline runs on a table as users' tables come (test_frameworks.make_awkward), and
test_frameworks.the_whole_chain_holds checks what it made, with this venv's python running the project's code:
the binary whole chain, run once per framework, here.

The rest of the template's tests run bakes with the template's shared venv, which holds every framework's
packages at once; this is where a package missing from one framework's lock shows (a `framework=tensorflow`
bake once shipped without TensorBoard and stopped in `train`). It replaces test_generated.py's
`test_baked_project_tests_pass` (three bakes' suites in the shared venv): every framework's suite now runs
here, in its own venv, Keras and the EBM included.

pip's files come from tests/wheelhouse.py (each lock downloaded once, then `PIP_NO_INDEX`): the Makefile's
commands are the user's, the wheelhouse stands for a warm pip cache.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

import wheelhouse
from conftest import FRAMEWORKS, SLUG, TEMPLATE, Interpreter, bake
from test_frameworks import make_awkward, the_whole_chain_holds
from test_lock_imports import locked

# Every framework on the default task, and reinforcement learning (its own lock, RLlib).
INSTALLS = [{"framework": framework} for framework in FRAMEWORKS] + [{"task": "reinforcement", "framework": "pytorch"}]
# The bakes whose system tier (`make test-system`: whole pipelines, the real server) runs here too, as it
# did in the shared venv before; every bake runs `make test` (its quick tier, its coverage floor), and
# Keras on torch and the EBM go through the whole chain below (WHOLE_CHAIN).
SYSTEM_TIER = {"sklearn", "pytorch", "tensorflow"}
# The one bake whose whole system tier runs. The others leave out the system tests below, whose verdict never
# depends on the framework: they serve a model the framework did not make, or train one only to have a run
# to tamper with and assert what validate, gate, export and register do with files, tags and thresholds.
# That code is the same in every bake, and every lock pins the sklearn lock's packages at its versions
# (checked before the tier runs): in the pytorch and tensorflow venvs they ran the same code on the same
# packages again. Each framework's own system tests still run in its venv: test_pipeline.py (the whole chain,
# parity, loading its logged files safely, the store moving), and in test_failures.py and
# test_import_model.py the tests whose outcome the framework decides.
WHOLE_SYSTEM_TIER = "sklearn"
# The frameworks whose `make pipeline` runs on make_awkward's table (names with spaces, slashes and dots, missing
# values), then faces test_frameworks.py's whole-chain checks: TensorBoard's curves, the explanation by the user's
# columns, ONNX against the native model on held-out rows, the EBM's server and own explanation, the same metrics
# from a second training. sklearn's runs on the table and config.yaml as baked, the README's first run exactly:
# its chain on a user's awkward table is test_own_data.py's, its parity and explanation its own system tier's, and
# the checks above made for networks (TensorBoard, permutation SHAP) do not apply to its trees.
WHOLE_CHAIN = set(FRAMEWORKS) - {"sklearn"}
TASK = "binary"  # cookiecutter.json's default task: INSTALLS' frameworks are baked with it
TABULAR_TESTS = "tests/tabular"  # FRAMEWORK_FREE's tests are there, in the bake
FRAMEWORK_FREE = {
    "test_serving.py": "serves contract_model.py's model (scikit-learn, built without the framework)",
    "stages/test_failures.py::test_corrupted_data_fails_validation_naming_columns": "validate stops it before train",
    "stages/test_failures.py::test_gate_out_of_reach_fails_and_registers_nothing": "a threshold no model reaches",
    "stages/test_failures.py::test_failed_gate_is_never_registered": "thresholds no model reaches",
    "stages/test_failures.py::test_onnx_changed_after_export_is_refused": "bytes appended to the stored file",
    "stages/test_failures.py::test_a_file_swapped_between_export_and_register_is_refused": "the file replaced",
    "stages/test_failures.py::test_a_rewritten_digest_tag_alone_is_refused": "a tag rewritten",
    "stages/test_failures.py::test_a_run_is_registered_only_from_the_ref_it_was_trained_on": "the git ref",
    "stages/test_failures.py::test_a_changed_data_file_stops_the_stages_after_train": "the data file's digest",
    "commands/test_import_model.py::"
    "test_an_onnx_model_trained_elsewhere_goes_through_evaluate_gate_export_and_register": (
        "an ONNX file made by scikit-learn, imported: the bake's framework is never used"
    ),
}


def runs_tests(command: str) -> bool:
    return "pytest" in command or re.match(r"make test(-system)?\b", command) is not None


def user_env(wheels: Path) -> dict[str, str]:
    """A shell as a user has it: nothing of the template's venv (PATH, PYTHONPATH, VIRTUAL_ENV), no MLflow or
    Keras settings; pip reads the wheelhouse instead of an index."""
    shared_bin = str(Path(sys.executable).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "GITHUB_", "KERAS_", "PIP_NO_INDEX", "PIP_FIND_LINKS"))
        and key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != shared_bin)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return {**env, **wheelhouse.install_env(wheels)}


class Clock:
    """Wall seconds since it was made, and the CPU seconds of the child processes waited for meanwhile (wall time
    alone moves with the machine's load, CPU seconds far less)."""

    def __init__(self) -> None:
        self.started, self.before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)

    def wall(self) -> float:
        return time.monotonic() - self.started

    def spent(self) -> str:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (self.before.ru_utime + self.before.ru_stime)
        return f"{self.wall():.0f} s ({cpu:.0f} CPU-s)"


def sh(command: str, project: Path, env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess, str]:
    """Run `command` in `project`; return its result and what it spent (Clock)."""
    clock = Clock()
    result = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"`{command}` in {project} exited {result.returncode} after {clock.wall():.0f} s\n"
        f"--- stdout\n{result.stdout[-5000:]}\n--- stderr\n{result.stderr[-5000:]}"
    )
    return result, clock.spent()


def ci_test_steps(project: Path) -> tuple[dict[str, str], list[str]]:
    """The bake's CI job that runs its tests: its env and the `run:` of each step that runs them (pytest,
    or the Makefile's test targets)."""
    ci = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = [job for job in ci["jobs"].values() if any(runs_tests(s.get("run", "")) for s in job.get("steps", []))]
    steps = [step["run"] for step in job["steps"] if runs_tests(step.get("run", ""))]
    return {key: str(value) for key, value in job.get("env", {}).items()}, steps


@pytest.mark.parametrize("options", INSTALLS, ids=lambda o: o.get("task", o["framework"]))
def test_a_fresh_bake_installs_runs_and_passes_its_ci_tests_in_its_own_venv(tmp_path, options):
    project = bake(tmp_path, **options)
    assert project.name == SLUG
    env = user_env(wheelhouse.fill(project / "requirements.lock"))
    times = {}

    _, times["make setup"] = sh("make setup", project, env, timeout=1200)
    venv_python = project / ".venv" / "bin" / "python"
    # The venv holds the lock, the project and nothing else: what the user gets is what was pinned.
    listed = subprocess.run(
        [
            str(venv_python),
            "-c",
            "import importlib.metadata as m; print(*{d.metadata['Name'] for d in m.distributions()})",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    assert {canonicalize_name(name) for name in listed} == locked(project) | {canonicalize_name(SLUG)}

    # CI's test steps on the project as baked, as CI runs them on a fresh checkout (the bake's tests copy its
    # config.yaml and data/ into their own workspaces: they need the bundled ones, and leave them as they were).
    # CI's `python` is the interpreter the project was installed into: here, .venv's.
    baked_inputs = pipeline_inputs(project)
    ci_env, steps = ci_test_steps(project)
    assert steps, "the bake's ci.yml runs no test step"
    if options.get("task") == "reinforcement" or options["framework"] not in SYSTEM_TIER:
        steps = [step for step in steps if "test-system" not in step]
    step_env = {**env, **ci_env, "PATH": f"{venv_python.parent}{os.pathsep}{env['PATH']}"}
    for number, step in enumerate(steps):
        this_env = step_env
        if "test-system" in step and options["framework"] != WHOLE_SYSTEM_TIER:
            this_env = {**step_env, "PYTEST_ADDOPTS": framework_free_left_out(project)}
        result, times[f"CI test step {number + 1}"] = sh(step, project, this_env, timeout=1800)
        summary = result.stdout.strip().splitlines()[-1]
        assert re.search(r"\d+ passed", summary) and " failed" not in summary and " error" not in summary, summary
    assert pipeline_inputs(project) == baked_inputs, "the bake's tests changed its config.yaml or data/"

    # The user's pipeline, on their own kind of table where WHOLE_CHAIN says, then the whole chain checked.
    whole_chain = "task" not in options and options["framework"] in WHOLE_CHAIN
    if whole_chain:
        make_awkward(project, TASK)
    result, times["make pipeline"] = sh("make pipeline", project, env, timeout=1200)
    assert "pipeline done" in result.stderr
    if whole_chain:
        clock = Clock()
        the_whole_chain_holds(project, options["framework"], TASK, tmp_path, Interpreter(str(venv_python), env))
        times["whole-chain checks"] = clock.spent()
    print(f"{options}: " + ", ".join(f"{name} {spent}" for name, spent in times.items()))


def pipeline_inputs(project: Path) -> dict[str, bytes]:
    """The bytes of what a pipeline reads: config.yaml and every file under data/ (absent for reinforcement)."""
    files = [project / "config.yaml", *sorted(path for path in (project / "data").rglob("*") if path.is_file())]
    return {str(path.relative_to(project)): path.read_bytes() for path in files}


def framework_free_left_out(project: Path) -> str:
    """pytest's options leaving FRAMEWORK_FREE out, once the reason holds: each is still a system test of this
    bake (a renamed one would otherwise run here again unnoticed), and this lock pins every package of the
    sklearn lock at the sklearn lock's version."""
    options = []
    for test in FRAMEWORK_FREE:
        path, _, name = f"{TABULAR_TESTS}/{test}".partition("::")
        text = (project / path).read_text()
        assert re.search(rf"^@pytest\.mark\.system\ndef {name or 'test_'}", text, re.MULTILINE), (
            f"{test} is no longer a system test of the bake: update FRAMEWORK_FREE"
        )
        options.append(f"--deselect={path}::{name}" if name else f"--ignore={path}")
    locks = TEMPLATE / "{{cookiecutter.project_slug}}" / "requirements"
    sklearn = dict(pin.split("==") for pin in wheelhouse.pins(locks / "sklearn.lock"))
    own = dict(pin.split("==") for pin in wheelhouse.pins(project / "requirements.lock"))
    differ = {name: (version, own[name]) for name, version in sklearn.items() if own.get(name, version) != version}
    assert not differ, f"{project.name}'s lock pins packages of the sklearn lock at other versions: {differ}"
    return " ".join(options)
