"""The generated dev container: valid against the official dev container schema, built on the Python the
template was asked for, set up the way `make setup` sets up a laptop, with the project's ports forwarded.

The schema is vendored: schemas/devContainer.base.schema.json is `schemas/devContainer.base.schema.json`
of the devcontainers/spec repository at commit c95ffeed1d059abfe9ffbe79762dc2fa4e7c2421 (2026-03-17),
MIT licence (its LICENSE-CODE); no package on PyPI or npm ships it (not even @devcontainers/cli 0.89.0).
Building the container is not tested: its base image is on mcr.microsoft.com, which this machine cannot reach.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCHEMA = Path(__file__).resolve().parent / "schemas" / "devContainer.base.schema.json"


def validate(path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA), str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("python_version", ["3.11", "3.12"])
def test_dev_container_is_valid_and_sets_up_the_project(baked, python_version):
    project = baked(python_version=python_version)
    path = project / ".devcontainer" / "devcontainer.json"
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    container = json.loads(path.read_text())
    assert container["image"] == f"mcr.microsoft.com/devcontainers/python:1-{python_version}-bookworm"

    makefile = (project / "Makefile").read_text()
    assert container["postCreateCommand"] == "make setup" and "\nsetup:" in makefile
    assert "PYTHON ?= .venv/bin/python" in makefile  # where `make setup` puts the interpreter VS Code uses
    vscode = container["customizations"]["vscode"]
    assert vscode["settings"]["python.defaultInterpreterPath"] == "${containerWorkspaceFolder}/.venv/bin/python"
    assert {"ms-python.python", "ms-toolsai.jupyter", "charliermarsh.ruff", "redhat.vscode-yaml"} <= set(
        vscode["extensions"]
    )
    assert "github.vscode-github-actions" in vscode["extensions"]
    # The ports the Makefile's servers listen on: the MLflow UI and the model server.
    ui = re.search(r"^mlflow-ui:.*\n\t.*--port (\d+)", makefile, re.MULTILINE)[1]
    serve = re.search(r"^serve:.*http://127\.0\.0\.1:(\d+)", makefile, re.MULTILINE)[1]
    assert sorted(container["forwardPorts"]) == sorted([int(ui), int(serve)])
    assert set(container["portsAttributes"]) == {ui, serve}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c.update(forwardPorts="5000"), "$.forwardPorts: '5000' is not of type 'array'"),
        (lambda c: c.update(forwardPort=c.pop("forwardPorts")), "('forwardPort' was unexpected)"),
    ],
    ids=["wrong type", "misspelt key"],
)
def test_a_broken_dev_container_is_refused_with_the_reason(baked, tmp_path, change, reason):
    container = json.loads((baked() / ".devcontainer" / "devcontainer.json").read_text())
    change(container)
    broken = tmp_path / "devcontainer.json"
    broken.write_text(json.dumps(container))
    result = validate(broken)
    assert result.returncode == 1
    assert reason in result.stdout, result.stdout + result.stderr
