"""The model registry as the release workflow uses it: find, fetch and promote registered versions.

A release deploys the version CI registered for the tagged commit (found by its `git_sha` tag), never
a retrained one; the `champion` alias follows what production runs. Each function raises UsageError
with what was looked for and where, so a failing release job says what to fix.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:  # mlflow is imported when a command runs, not when the CLI builds its parser
    from mlflow.tracking import MlflowClient

ONNX_ARTIFACT = "onnx/model.onnx"


def client_for(tracking_uri: str | None) -> MlflowClient:
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise UsageError("no tracking server: set MLFLOW_TRACKING_URI (the registry CI registered into) "
                         "or pass --tracking-uri")
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def find_version(client: MlflowClient, model_name: str, git_sha: str) -> str:
    """The newest version registered from `git_sha` (a full or abbreviated commit id)."""
    if len(git_sha) < 7:
        raise UsageError(f"--git-sha {git_sha!r}: give at least 7 characters of the commit id")
    versions = [v for v in client.search_model_versions(f"name = '{model_name}'")
                if v.tags.get("git_sha", "").startswith(git_sha)]
    if not versions:
        raise UsageError(f"no version of model {model_name!r} has tag git_sha={git_sha} in {client.tracking_uri}: "
                         "did CI's gate pass (and register) for this commit?")
    return str(max(int(v.version) for v in versions))


def get_version(client: MlflowClient, model_name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(model_name, version)
    except MlflowException as error:
        raise UsageError(f"model {model_name!r} version {version} not found in {client.tracking_uri}: "
                         f"{error.message}") from error


def download_onnx(client: MlflowClient, model_name: str, version: str, output: Path) -> Path:
    """The ONNX file CI's export logged to the version's run (the exact bytes that passed parity)."""
    from mlflow.exceptions import MlflowException

    found = get_version(client, model_name, version)
    run_id = found.tags.get("run_id") or found.run_id
    try:
        local = client.download_artifacts(run_id, ONNX_ARTIFACT, str(output.parent))
    except (MlflowException, OSError) as error:
        raise UsageError(f"run {run_id} of {model_name} v{version} has no {ONNX_ARTIFACT}: did CI's export "
                         f"job finish for it? ({error})") from error
    local = Path(local)
    if local.resolve() != output.resolve():
        output.parent.mkdir(parents=True, exist_ok=True)
        local.replace(output)
        if local.parent != output.parent and not any(local.parent.iterdir()):
            local.parent.rmdir()
    return output


def promote(client: MlflowClient, model_name: str, version: str, alias: str) -> str | None:
    """Point `alias` at `version`; returns the version it pointed at before (None if unset)."""
    from mlflow.exceptions import MlflowException

    get_version(client, model_name, version)
    try:
        previous = str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(model_name, alias, version)
    return previous


# --- CLI commands: each gets --config (for the model name) and --tracking-uri -----------------------

def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")


def _model_name(args: argparse.Namespace) -> str:
    from . import config as configuration

    return configuration.load(args.config).tracking.model_name


def _publish(values: dict[str, str]) -> None:
    """key=value lines on stdout, and to $GITHUB_OUTPUT when running in Actions."""
    lines = "".join(f"{key}={value}\n" for key, value in values.items())
    sys.stdout.write(lines)
    if target := os.environ.get("GITHUB_OUTPUT"):
        with open(target, "a") as handle:
            handle.write(lines)


def _guarded(body) -> int:
    try:
        return body()
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def add_find_arguments(parser: argparse.ArgumentParser) -> None:
    """`find-version --git-sha SHA`: the registered version built from a commit."""
    _common(parser)
    parser.add_argument("--git-sha", required=True, help="commit id (default in CI: the tagged commit)")


def run_find(args: argparse.Namespace) -> int:
    def body() -> int:
        client, name = client_for(args.tracking_uri), _model_name(args)
        version = find_version(client, name, args.git_sha)
        found = get_version(client, name, version)
        _publish({"model_version": version, "run_id": found.tags.get("run_id") or found.run_id or ""})
        return 0
    return _guarded(body)


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """`download-onnx --version N`: the ONNX file of a registered version, to outputs/model.onnx."""
    _common(parser)
    parser.add_argument("--version", required=True)
    parser.add_argument("--output", type=Path, default=Path("outputs/model.onnx"))


def run_download(args: argparse.Namespace) -> int:
    def body() -> int:
        client, name = client_for(args.tracking_uri), _model_name(args)
        path = download_onnx(client, name, args.version, args.output)
        found = get_version(client, name, args.version)
        run_id = found.tags.get("run_id") or found.run_id or ""
        # outputs/run.json lets later commands (and the image's labels) name the run it came from.
        (args.output.parent / "run.json").write_text(json.dumps({"run_id": run_id}) + "\n")
        _publish({"model_version": args.version, "run_id": run_id, "path": str(path)})
        return 0
    return _guarded(body)


def add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    """`promote --version N --alias champion`: move an alias to a registered version."""
    _common(parser)
    parser.add_argument("--version", required=True)
    parser.add_argument("--alias", default="champion")


def run_promote(args: argparse.Namespace) -> int:
    def body() -> int:
        client, name = client_for(args.tracking_uri), _model_name(args)
        previous = promote(client, name, args.version, args.alias)
        print(f"{name}@{args.alias}: {previous or 'unset'} -> {args.version}")
        _publish({"previous_version": previous or "", "model_version": args.version})
        return 0
    return _guarded(body)


# name -> (help, add_arguments, run): what cli.py registers as subcommands.
COMMANDS = {
    "find-version": ("the registered version CI built from a commit (by its git_sha tag)",
                     add_find_arguments, run_find),
    "download-onnx": ("the ONNX file of a registered version", add_download_arguments, run_download),
    "promote": ("move an alias (default: champion) to a registered version", add_promote_arguments, run_promote),
}
