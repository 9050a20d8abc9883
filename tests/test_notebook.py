"""notebooks/explore.ipynb, executed with nbclient on baked projects: it runs top to bottom through the
project's own stages into the project's own MLflow store, what it shows is what its run holds, the
command line carries on from its run, and the pre-commit hook turns the executed file back into the
committed one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from conftest import SLUG, cli, project_env

RUN_LINE = re.compile(r"^run ([0-9a-f]{32}) in (\S+)$", re.MULTILINE)
METRIC_ROW = re.compile(r"^(\S+)\s+(-?[0-9.]+(?:e[-+]?\d+)?)$", re.MULTILINE)


def kernel(folder: Path) -> AsyncKernelManager:
    """A kernel on this interpreter (it has the project's dependencies), whatever kernels the machine has."""
    spec = folder / "kernels" / "project"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "project", "language": "python"}))
    return AsyncKernelManager(
        kernel_name="project", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    )


def cell(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    [found] = [c for c in notebook.cells if tag in c.metadata.get("tags", [])]
    return found


def shown(found: nbformat.NotebookNode, kind: str) -> list[str]:
    """What a cell showed: what it printed (`stdout`; the stages' log lines go to stderr) or its displayed
    objects of one MIME type."""
    if kind == "stdout":
        return [output.text for output in found.outputs if output.get("name") == "stdout"]
    return [output.data[kind] for output in found.outputs if kind in output.get("data", {})]


def strip_as_the_hook_does(project: Path, path: Path, *extra: str) -> subprocess.CompletedProcess:
    """nbstripout with the arguments of the project's own pre-commit hook."""
    hooks = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    [hook] = [hook for hook in hooks if hook["id"] == "nbstripout"]
    command = [sys.executable, "-m", "nbstripout", *hook.get("args", []), *extra, str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


# The notebook is the same for every framework: scikit-learn, and Keras, the one whose backend must be
# chosen before its first import (PyTorch's stages are run by every other pipeline test).
@pytest.mark.parametrize("framework", ["sklearn", "keras"])
def test_notebook_runs_through_the_stages_into_the_projects_store(tmp_path, baked, framework):
    project = shutil.copytree(baked(framework=framework), tmp_path / SLUG)
    committed = project / "notebooks" / "explore.ipynb"
    notebook = nbformat.read(committed, as_version=4)
    # Started where Jupyter starts a kernel, in the notebook's own folder, not at the project root.
    client = NotebookClient(
        notebook, timeout=900, km=kernel(tmp_path), resources={"metadata": {"path": str(committed.parent)}}
    )
    client.execute(env=project_env(project))  # a failing cell raises, with its traceback

    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "not every cell ran, in order"
    run_id, store = RUN_LINE.search("".join(shown(cell(notebook, "metrics"), "stdout"))).groups()
    assert store == f"sqlite:///{project / 'mlflow.db'}", "the notebook must use the project's own store"
    assert not {"mlflow.db", "mlruns", "outputs"} & {p.name for p in committed.parent.iterdir()}
    assert json.loads((project / "outputs" / "run.json").read_text())["run_id"] == run_id

    client = MlflowClient(store, registry_uri=store)
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == SLUG
    assert run.data.tags["framework"] == framework
    assert {f"stage.{s}": "done" for s in ("validate", "train", "evaluate", "gate")}.items() <= run.data.tags.items()
    # The metrics table it displayed is the run's, every metric of it and nothing else.
    [table] = shown(cell(notebook, "metrics"), "text/plain")
    displayed = {name: float(value) for name, value in METRIC_ROW.findall(table)}
    assert displayed.keys() == run.data.metrics.keys()
    assert displayed == pytest.approx(run.data.metrics, rel=1e-5, abs=1e-6)
    assert any(name.startswith("fairness.sex.") for name in displayed)

    # Every plot of the run, the fairness plot of each sensitive feature among them, read back from MLflow.
    logged = sorted(Path(a.path).stem for a in client.list_artifacts(run_id, "plots"))
    plots = cell(notebook, "plots")
    assert {"by_group_sex", "by_group_age_group"} <= set(logged)
    assert sorted(title.strip("*") for title in shown(plots, "text/markdown")) == logged
    assert len(shown(plots, "image/png")) == len(logged)
    gate = cell(notebook, "gate")
    assert "".join(shown(gate, "stdout")) == f"gate.verdict: {run.data.tags['gate.verdict']}\n"
    assert run.data.tags["gate.verdict"] == "passed"
    assert shown(gate, "text/markdown")[0].startswith(f"## Gate: PASSED - {SLUG}")
    assert re.match(r"(\d+) of \1 expectations passed", "".join(shown(cell(notebook, "validation"), "stdout")))

    # The command line carries on from the run the notebook trained: one lineage.
    cli(project, "export")
    assert client.get_run(run_id).data.tags["export.parity"] == "passed"

    # The hook turns the executed notebook back into the committed file, byte for byte.
    executed = tmp_path / "executed.ipynb"
    nbformat.write(notebook, executed)
    assert strip_as_the_hook_does(project, executed, "--verify").returncode != 0
    assert strip_as_the_hook_does(project, committed, "--verify").returncode == 0
    result = strip_as_the_hook_does(project, executed)
    assert result.returncode == 0, result.stderr
    assert executed.read_bytes() == committed.read_bytes()
