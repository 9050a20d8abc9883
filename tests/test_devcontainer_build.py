"""The generated dev container, brought up for real: the devcontainer CLI (npm `@devcontainers/cli`) drives
podman, runs the container's `postCreateCommand` (`make setup`) in the bind-mounted project, and the
project's own venv then imports the package inside the container.

What differs from a user's `Reopen in Container`, because no registry is reachable here: the image. The
project's devcontainer.json names `mcr.microsoft.com/devcontainers/python:1-<python>-bookworm`; this test
overrides only `image` with a local Debian bookworm (its Python 3.11, make) built from the same base as
the serving-image tests, and pip reads the wheelhouse (tests/wheelhouse.py) instead of PyPI. Everything
else (postCreateCommand, workspace mount, settings) is the project's own file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import container_engine
import wheelhouse
from conftest import PACKAGE, bake

CLI_VERSION = "0.89.0"
DEV_IMAGE = "localhost/mlops-devcontainer:bookworm"
TOOLS = container_engine.CACHE / "devcontainer-cli"


def devcontainer_cli() -> Path:
    """The CLI from npm, installed once under the template's .cache (never into the repository's tree)."""
    binary = TOOLS / "node_modules" / ".bin" / "devcontainer"
    if not binary.exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(TOOLS), f"@devcontainers/cli@{CLI_VERSION}"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return binary


def dev_image() -> str:
    """The local stand-in for the devcontainers/python image: python3 with venv, make and git."""
    if container_engine.podman("image", "exists", DEV_IMAGE, check=False).returncode == 0:
        return DEV_IMAGE
    base = container_engine.ensure_base_image()
    context = container_engine.CACHE / "devcontainer-image"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Containerfile").write_text(
        f"FROM {base}\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends make git "
        "&& rm -rf /var/lib/apt/lists/*\n"
    )
    container_engine.podman("build", "-t", DEV_IMAGE, str(context), timeout=900)
    return DEV_IMAGE


@pytest.fixture(scope="module")
def engine():
    missing = container_engine.missing_tools() + [tool for tool in ("npm", "node") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"missing {', '.join(missing)} (scripts/system-packages.sh installs them)")
        pytest.skip(f"missing {', '.join(missing)}")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(node.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"the devcontainer CLI needs Node.js 20 or later; `node --version` says {node}")
    return devcontainer_cli(), dev_image()


def test_dev_container_comes_up_and_sets_up_the_project(tmp_path, engine):
    cli, image = engine
    project = bake(tmp_path)
    config = json.loads((project / ".devcontainer" / "devcontainer.json").read_text())
    override = tmp_path / "devcontainer.json"
    override.write_text(json.dumps({**config, "image": image}))
    wheels = wheelhouse.fill(project / "requirements.lock")
    label = f"mlops-template-test={tmp_path.name}"
    env = {**os.environ, **container_engine.environment()}
    common = ["--workspace-folder", str(project), "--docker-path", "podman", "--id-label", label]
    try:
        up = subprocess.run(
            [
                str(cli), "up", *common,
                "--override-config", str(override),
                "--mount", f"type=bind,source={wheels},target=/wheels",
                "--remote-env", "PIP_NO_INDEX=1",
                "--remote-env", "PIP_FIND_LINKS=/wheels",
                "--remove-existing-container",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )  # fmt: skip
        assert up.returncode == 0, f"devcontainer up exited {up.returncode}\n{up.stdout[-4000:]}\n{up.stderr[-6000:]}"
        outcome = json.loads(up.stdout.strip().splitlines()[-1])
        assert outcome["outcome"] == "success", outcome
        # postCreateCommand made the venv in the bind-mounted project, with the container's Python.
        assert (project / ".venv" / "bin" / "python").exists()
        probe = subprocess.run(
            [
                str(cli), "exec", *common,
                ".venv/bin/python", "-c", f"import {PACKAGE}, sys; print(sys.version_info[:2], {PACKAGE}.__name__)",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr[-4000:]
        assert f"(3, 11) {PACKAGE}" in probe.stdout
    finally:
        ids = container_engine.podman("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
        if ids:
            container_engine.podman("rm", "-f", *ids, check=False)
