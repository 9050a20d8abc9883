"""A local folder holding every wheel a framework's lock pins: what a warm pip cache is to a user.

pip's HTTP cache stays empty on machines whose proxy strips `Cache-Control` (pip then stores nothing), so
each `make setup` would download ~190 wheels again. The template's tests instead download each lock once
into this folder (`pip download --no-deps`, from PyPI and, for the CPU build of PyTorch, a local wheel or
PyTorch's index) and run the bake's own `make setup` with `PIP_NO_INDEX=1` and `PIP_FIND_LINKS` pointing
here: the Makefile's commands are unchanged, only where pip finds the files is.

The folder persists across sessions ($TEMPLATE_WHEELHOUSE, else ~/.cache/mlops-template/wheels), and the
locks share most pins: only the files it lacks are asked for (about 225 files, 0.9 GB, for all six locks).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name

TORCH_INDEX_URL = os.environ.get("TORCH_INDEX_URL", "https://download.pytorch.org/whl/cpu")


def folder() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops-template" / "wheels"
    path = Path(os.environ.get("TEMPLATE_WHEELHOUSE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def pins(lock: Path) -> list[str]:
    """The lock's `name==version` lines (comments and `# via` notes dropped)."""
    return [line.strip() for line in lock.read_text().splitlines() if "==" in line and not line.startswith(("#", " "))]


def _normal(pin: str) -> str:
    name, version = pin.split("==")
    return f"{canonicalize_name(name)}=={version}"


def _pin_of(file: str) -> str:
    """`torch-2.13.0+cpu-cp311-...whl` or `ebm2onnx-3.3.1.tar.gz` -> `name==version`, the name normalised."""
    if file.endswith(".whl"):
        name, version = file.split("-")[:2]
    else:  # an sdist (ebm2onnx has no wheel): pip builds it, and caches the wheel it built
        name, version = file.removesuffix(".tar.gz").removesuffix(".zip").rsplit("-", 1)
    return f"{canonicalize_name(name)}=={version}"


def _download(requirements: list[str], dest: Path, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(requirements) + "\n")
    try:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                str(dest),
                "-r",
                handle.name,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        os.unlink(handle.name)


def fill(lock: Path) -> Path:
    """Download every file `lock` pins that the wheelhouse lacks; return the folder."""
    dest = folder()
    # Locks share most pins: ask the index only for the files not already here.
    present = {_pin_of(file.name) for file in dest.iterdir() if file.name.endswith((".whl", ".tar.gz", ".zip"))}
    wanted = [pin for pin in pins(lock) if _normal(pin) not in present]
    # PyPI has no `+cpu` builds: those come from a local wheel (find-links) or else PyTorch's own index.
    local_builds = [pin for pin in wanted if "+" in pin]
    results = [_download([pin for pin in wanted if pin not in local_builds], dest)] if wanted else []
    if local_builds:
        results.append(_download(local_builds, dest))
        if results[-1].returncode != 0:
            results[-1] = _download(local_builds, dest, "--index-url", TORCH_INDEX_URL)
    for result in results:
        if result.returncode != 0:
            raise AssertionError(
                f"`pip download` of {lock} into {dest} failed (network, or a pin no index has):\n"
                + result.stderr[-4000:]
            )
    return dest


def install_env(wheels: Path) -> dict[str, str]:
    """Environment for `make setup` that takes every file from the wheelhouse and asks no index."""
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
