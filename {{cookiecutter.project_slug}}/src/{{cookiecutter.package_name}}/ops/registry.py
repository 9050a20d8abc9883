"""The model registry as the release workflow uses it: find, verify, fetch and promote versions.

A release ships a version only when its tags prove the whole chain: registered from the protected
branch, gate passed, ONNX parity passed, and an ONNX digest that matches the file actually fetched
(`register` writes those tags; README, "Trust model"). Each function raises UsageError naming what
was looked for, which check failed and where, so a failing release job says what to fix.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .. import lineage
from ..errors import UsageError
from ..lineage import ONNX_ARTIFACT, sha256_of, trust_problems
from .github_ci import publish

if TYPE_CHECKING:  # mlflow is imported when a command runs, not when the CLI builds its parser
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

PROTECTED_REF = "refs/heads/main"


def client_for(tracking_uri: str | None) -> MlflowClient:
    import os

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or os.environ.get("MLFLOW_REGISTRY_URI")
    if not uri:
        raise UsageError(
            "no tracking server: set MLFLOW_TRACKING_URI (the registry CI registered into) or pass --tracking-uri"
        )
    from mlflow.tracking import MlflowClient

    from ..managed_tracking import check

    check(uri)
    return MlflowClient(uri, registry_uri=uri)


def find_version(client: MlflowClient, model_name: str, git_sha: str, protected_ref: str = PROTECTED_REF) -> str:
    """The newest version registered from `git_sha` (full or abbreviated) that passes every check."""
    if not re.fullmatch(r"[0-9a-f]{7,40}", git_sha):
        raise UsageError(f"--git-sha {git_sha!r}: give 7 to 40 lowercase hex characters of the commit id")
    versions = sorted(
        (
            v
            for v in client.search_model_versions(f"name = '{model_name}'")
            if v.tags.get(lineage.GIT_SHA, "").startswith(git_sha)
        ),
        key=lambda v: int(v.version),
        reverse=True,
    )
    if not versions:
        raise UsageError(
            f"no version of model {model_name!r} has tag {lineage.GIT_SHA}={git_sha} in "
            f"{client.tracking_uri}: did CI on {protected_ref} pass the gate and register for this "
            "commit?"
        )
    refused = []
    for version in versions:
        problems = trust_problems(version.tags, protected_ref)
        if not problems:
            return str(version.version)
        refused.append(f"version {version.version}: {'; '.join(problems)}")
    raise UsageError(f"no version of model {model_name!r} for commit {git_sha} may ship: " + " | ".join(refused))


def get_version(client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(model_name, version)
    except MlflowException as error:
        raise UsageError(
            f"model {model_name!r} version {version} not found in {client.tracking_uri}: {error.message}"
        ) from error


def shippable_version(
    client: MlflowClient, model_name: str, version: str, protected_ref: str = PROTECTED_REF
) -> ModelVersion:
    """The version, if its tags pass every check (a rollback target is held to the same rules)."""
    found = get_version(client, model_name, version)
    if problems := trust_problems(found.tags, protected_ref):
        raise UsageError(f"model {model_name!r} version {version} may not ship: {'; '.join(problems)}")
    return found


def run_of(version: ModelVersion) -> str:
    return str(version.tags.get(lineage.RUN_ID) or version.run_id)


def download_verified(client: MlflowClient, run_id: str, expected_sha256: str, output: Path) -> Path:
    """The run's ONNX file at `output`, only if its bytes hash to `expected_sha256`; else nothing."""
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as folder:
        try:
            local = Path(client.download_artifacts(run_id, ONNX_ARTIFACT, folder))
        except (MlflowException, OSError) as error:
            raise UsageError(f"run {run_id} has no {ONNX_ARTIFACT}: did its export job finish? ({error})") from error
        actual = sha256_of(local)
        if actual != expected_sha256:
            raise UsageError(
                f"{ONNX_ARTIFACT} of run {run_id} has sha256 {actual}, but {expected_sha256} was "
                "recorded when it passed the parity check: the file changed since; refusing it"
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local, output)
    return output


def promote(client: MlflowClient, model_name: str, version: str, alias: str) -> str | None:
    """Point `alias` at `version`; returns the version it pointed at before (None if unset)."""
    from mlflow.exceptions import MlflowException

    try:
        previous = str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(model_name, alias, version)
    return previous


# --- CLI commands: each gets --config (for the model name), --tracking-uri and --protected-ref -----


def version_number(text: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]{0,9}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a model version number (1, 2, ...)")
    return text


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")
    parser.add_argument(
        "--protected-ref",
        default=PROTECTED_REF,
        help=f"the only ref whose versions may ship (default: {PROTECTED_REF})",
    )


def _model_name(args: argparse.Namespace) -> str:
    from .. import config as configuration

    return configuration.load(args.config).tracking.model_name


def add_find_arguments(parser: argparse.ArgumentParser) -> None:
    """`find-version --git-sha SHA`: the verified version CI registered from a commit."""
    _common(parser)
    parser.add_argument("--git-sha", required=True, help="commit id (in CI: the tagged commit)")


def run_find(args: argparse.Namespace) -> None:
    client, name = client_for(args.tracking_uri), _model_name(args)
    version = find_version(client, name, args.git_sha, args.protected_ref)
    found = get_version(client, name, version)
    publish({"model_version": version, "run_id": run_of(found), "onnx_sha256": found.tags[lineage.ONNX_SHA256]})


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """`download-onnx --version N`: a verified version's ONNX file, checked against its digest."""
    _common(parser)
    parser.add_argument("--version", required=True, type=version_number)
    parser.add_argument("--output", type=Path, default=Path("outputs") / lineage.ONNX_FILE)


def run_download(args: argparse.Namespace) -> None:
    client, name = client_for(args.tracking_uri), _model_name(args)
    found = shippable_version(client, name, args.version, args.protected_ref)
    run_id, digest = run_of(found), found.tags[lineage.ONNX_SHA256]
    path = download_verified(client, run_id, digest, args.output)
    # outputs/run.json, as train writes it: later commands (and the image's labels) name the run it came from.
    lineage.RunRecord(run_id, client.get_run(run_id).info.experiment_id, client.tracking_uri).save(args.output.parent)
    publish({"model_version": args.version, "run_id": run_id, "onnx_sha256": digest, "path": str(path)})


def add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    """`promote --version N --alias champion`: move an alias to a verified version."""
    _common(parser)
    parser.add_argument("--version", required=True, type=version_number)
    parser.add_argument("--alias", default=lineage.CHAMPION)


def run_promote(args: argparse.Namespace) -> None:
    client, name = client_for(args.tracking_uri), _model_name(args)
    shippable_version(client, name, args.version, args.protected_ref)
    previous = promote(client, name, args.version, args.alias)
    print(f"{name}@{args.alias}: {previous or 'unset'} -> {args.version}")
    publish({"previous_version": previous or "", "model_version": args.version})


# name -> (help, add_arguments, run): what cli.py registers as subcommands.
COMMANDS = {
    "find-version": (
        "the verified version CI registered from a commit (by its git_sha tag)",
        add_find_arguments,
        run_find,
    ),
    "download-onnx": ("the digest-checked ONNX file of a verified version", add_download_arguments, run_download),
    "promote": ("move an alias (default: champion) to a verified version", add_promote_arguments, run_promote),
}
