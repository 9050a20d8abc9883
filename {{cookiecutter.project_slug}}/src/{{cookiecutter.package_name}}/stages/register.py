"""register: the one place a model version is created, and only for a run that earned it.

A run is registered when its gate passed, its ONNX export passed the parity check, and the ONNX
file in the store still hashes to the digest export recorded. The version carries what a release
checks before shipping it: source ref, commit, gate verdict, parity result and the ONNX digest,
and its model card (modelcard/) as its description, the card also logged to the run.
In CI only the protected branch runs this stage, with the registry's write credentials (README,
"Trust model"); everywhere else the stages before it run with read access at most.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from .. import lineage
from ..config import Config
from ..errors import CheckFailed
from ..modelcard import answers, publish
from . import StageResult
from .context import attach_run as attach

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registered(StageResult):
    run_id: str
    model_name: str
    model_version: str
    onnx_sha256: str


def refusals(run_tags: dict[str, str], ref: str) -> list[str]:
    """Why this run may not become a version (empty when it may)."""
    problems = lineage.trust_problems(run_tags, protected_ref=None)
    trained_on = run_tags.get(lineage.SOURCE_REF, "local")
    if trained_on != ref:
        problems.append(f"it was trained from {trained_on} but is being registered from {ref}")
    return problems


def stored_digest(client: MlflowClient, run_id: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        return lineage.sha256_of(Path(client.download_artifacts(run_id, lineage.ONNX_ARTIFACT, folder)))


def create_version(client: MlflowClient, model_name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """Register once per run: a retried job finds the version it made before."""
    for existing in client.search_model_versions(f"name = '{model_name}'"):
        if existing.tags.get(lineage.RUN_ID) == run_id:
            return str(existing.version)
    return str(mlflow.register_model(model_uri, model_name, tags=tags).version)


def digest_problem(recorded: str, stored: str, from_export: str | None) -> str | None:
    """Why the stored ONNX file is not the one export checked (None when it is).

    `from_export` is the digest export's CI job published as a job output: a value no one else can
    write. The run's tag and file sit in a tracking store that other principals may be able to edit
    (a shared Databricks experiment), so when given, it alone decides, and a tag that disagrees with it
    is itself a refusal.
    """
    if from_export is None:
        if stored != recorded:
            return (
                f"hashes to {stored}, not the {recorded} export recorded after its parity check: the file changed since"
            )
        return None
    if not lineage.SHA256.fullmatch(from_export):
        return f"--onnx-sha256 {from_export!r} is not a SHA-256 (64 lowercase hex): pass export's job output"
    published = f"the {from_export} export's job published"
    if stored != from_export:
        return f"hashes to {stored}, not {published}: the file was replaced after export"
    if recorded != from_export:
        return f"is tagged {lineage.ONNX_SHA256}={recorded}, not {published}: the tag was rewritten"
    return None


def run(config: Config, run_id: str | None = None, onnx_sha256: str | None = None) -> Registered:
    """Register the run; `onnx_sha256` is the digest export published (CI passes its job output)."""
    context = attach(config, run_id)
    tags, ref = context.run.data.tags, lineage.source_ref()
    if problems := refusals(tags, ref):
        raise CheckFailed(f"run {context.run_id} may not be registered: {'; '.join(problems)}. Nothing was registered.")
    answers_path = config.root / answers.FILE
    answers.read(answers_path)  # a broken model_card.yaml stops here, before anything is registered
    stored = stored_digest(context.client, context.run_id)
    if problem := digest_problem(tags[lineage.ONNX_SHA256], stored, onnx_sha256):
        raise CheckFailed(f"{lineage.ONNX_ARTIFACT} of run {context.run_id} {problem}. Nothing was registered.")
    expected = stored

    model_name = config.tracking.model_name
    version_tags = {lineage.RUN_ID: context.run_id, lineage.SOURCE_REF: ref} | {
        key: tags[key] for key in lineage.VERSION_TAGS
    }
    # A model trained elsewhere says so on its version too, with the file it came from.
    version_tags |= {key: tags[key] for key in lineage.IMPORT_TAGS if key in tags}
    # And a model trained from another, which (transfer learning, model.init_from).
    version_tags |= {key: tags[key] for key in lineage.INIT_FROM_TAGS if key in tags}
    version = create_version(context.client, model_name, context.model_uri, context.run_id, version_tags)
    context.client.set_registered_model_alias(model_name, lineage.CHALLENGER, version)
    card = publish.record(context.client, context.run_id, model_name, version, answers_path)
    with mlflow.start_run(run_id=context.run_id):
        mlflow.set_tags({lineage.MODEL_VERSION: version, lineage.stage_tag("register"): lineage.DONE})
    registered = Registered(context.run_id, model_name, version, expected)
    config.outputs.mkdir(parents=True, exist_ok=True)
    (config.outputs / lineage.REGISTERED_FILE).write_text(json.dumps(registered.__dict__, indent=2) + "\n")
    (config.outputs / lineage.MODEL_CARD_FILE).write_text(card)
    log.info(
        "registered %s version %s from %s (alias %r, ONNX sha256 %s)",
        model_name,
        version,
        ref,
        lineage.CHALLENGER,
        expected[:12],
    )
    return registered
