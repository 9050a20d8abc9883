"""The generated dev container: built on the Python the template was asked for, set up the way `make
setup` sets up a laptop, with the project's ports forwarded.

Its validity against the official dev container schema is checked by the template's own CI on GitHub
(.github/workflows/template-ci.yml, the schema at a pinned commit of devcontainers/spec): no package
registry ships that schema, and GitHub is out of reach of these tests. The container is brought up for
real by test_devcontainer_build.py (the devcontainer CLI on podman, `make setup` as its postCreateCommand),
on a local stand-in for the image: mcr.microsoft.com is out of reach.
"""

from __future__ import annotations

import json
import re

import pytest


@pytest.mark.parametrize("python_version", ["3.11", "3.12"])
def test_dev_container_sets_up_the_project_on_its_python(baked, python_version):
    project = baked(python_version=python_version)
    path = project / ".devcontainer" / "devcontainer.json"
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
