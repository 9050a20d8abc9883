"""Which model `score` uses: a registry version (by alias or number) held to the release's checks, or
a local ONNX file that skips them.

A registry version must pass `lineage.trust_problems` (registered from the protected branch, gate
and ONNX parity passed, an ONNX digest recorded) and its ONNX file, downloaded from its run, must
hash to that digest (`registry.download_verified`): the rows scored are scored by exactly the model a
release would ship. A local file (`--onnx`) is for a laptop: no registry, no checks, its lineage read
from its own metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .... import lineage
from ....errors import UsageError
from ....ops import registry

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# models:/<name>@<alias> or models:/<name>/<version>, as MLflow writes model URIs.
MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>[1-9][0-9]*))")


@dataclass(frozen=True)
class Source:
    """Where the ONNX file came from; every scored row carries `model_version` and `run_id`."""

    onnx: Path
    name: str
    model_version: str  # "" for a local file that was never registered
    run_id: str
    description: str  # for the log: "{{ cookiecutter.project_slug }} version 3 (alias champion), verified"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """(name, alias, version) of `models:/name@alias` or `models:/name/version`."""
    match = MODEL_URI.fullmatch(uri)
    if not match:
        raise UsageError(f"--model {uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>")
    return match["name"], match["alias"], match["version"]


def from_registry(uri: str, tracking_uri: str | None, protected_ref: str, folder: Path) -> Source:
    """The version `uri` names, checked as a release checks it, its ONNX file downloaded into `folder`."""
    name, alias, number = parse_model_uri(uri)
    client = registry.client_for(tracking_uri)
    version = number or _aliased(client, name, str(alias))
    found = registry.get_version(client, name, version)
    called = f"model {name!r} version {version}" + (f" (alias {alias})" if alias else "")
    if problems := lineage.trust_problems(found.tags, protected_ref):
        raise UsageError(
            f"{called} is not trusted: {'; '.join(problems)}. Score only versions a release would ship "
            f"(promote one: `promote --version N --alias {alias or lineage.CHAMPION}`), or pass --onnx to "
            "score a local file without the registry's checks"
        )
    run_id, digest = registry.run_of(found), found.tags[lineage.ONNX_SHA256]
    path = registry.download_verified(client, run_id, digest, folder / lineage.ONNX_FILE)
    return Source(path, name, version, run_id, f"{called}, run {run_id}: trusted, ONNX digest verified")


def _aliased(client: MlflowClient, name: str, alias: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        raise UsageError(
            f"model {name!r} has no alias {alias!r} in {client.tracking_uri} ({error.message}); "
            f"point it at a verified version with `promote --version N --alias {alias}`, or pass "
            "--model models:/<name>/<version>"
        ) from error


def from_file(path: Path, name: str, run_id: str, model_version: str) -> Source:
    """A local ONNX file: its lineage is what its own metadata says (export writes the run id)."""
    return Source(path, name, model_version, run_id, f"local file {path} (no registry checks)")
