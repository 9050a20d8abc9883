"""The lineage vocabulary: every run tag, artifact path and outputs/ file name, written and read by these names.

Stages write them, the release tools (ops/) and the workflows read them back; naming each once here is
what keeps a writer and its readers agreeing. Standard library only: every part of the project can
import it cheaply.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

# --- run tags (MLflow) ---------------------------------------------------------------------------
MODEL_URI = "model.uri"  # where train logged the native model
MODEL_CLASSES = "model.classes"  # JSON list, in the order of the probability columns
FRAMEWORK = "framework"
TASK = "task"
GIT_SHA = "git_sha"  # the commit the run was trained from
SOURCE_REF = "source_ref"  # the git ref CI built from (refs/heads/main, ...); `local` off CI
GATE_VERDICT = "gate.verdict"  # passed | failed
EXPORT_PARITY = "export.parity"  # passed | failed
ONNX_SHA256 = "onnx.sha256"  # digest of the ONNX file export logged after its parity check
MODEL_VERSION = "model.version"  # the version `register` created from the run
RUN_ID = "run_id"  # on a model version: the run it came from
# Set by `import-model` on a run whose model was trained elsewhere (and copied to its version):
ORIGIN = "origin"  # IMPORTED
IMPORT_SOURCE = "import.source"  # the imported file's name
IMPORT_SHA256 = "import.sha256"  # its digest, as read
IMPORT_FORMAT = "import.format"  # onnx | skops
IMPORT_TAGS = (ORIGIN, IMPORT_SOURCE, IMPORT_SHA256, IMPORT_FORMAT)
IMPORTED = "imported"
# Set (as params and tags) by `train` on a run that started from another model (model.init_from,
# tabular/training/transfer.py), and copied to its version: the chain of models, link by link, in the MLflow UI.
INIT_FROM_URI = "init_from.uri"  # the reference as given: models:/<name>@<alias>, models:/<name>/<n>, runs:/...
INIT_FROM_MODEL = "init_from.model_uri"  # the logged model it resolved to (models:/m-...)
INIT_FROM_VERSION = "init_from.version"  # the registered version it resolved to (registry references only)
INIT_FROM_RUN_ID = "init_from.run_id"  # the run that trained the base
INIT_FROM_PREFIX = "init_from."  # what every tag above starts with
INIT_FROM_TAGS = (INIT_FROM_URI, INIT_FROM_MODEL, INIT_FROM_VERSION, INIT_FROM_RUN_ID)
# Copied from the run to the version `register` creates: what a release checks (trust_problems).
VERSION_TAGS = (GIT_SHA, GATE_VERDICT, EXPORT_PARITY, ONNX_SHA256)
DONE, FAILED, PASSED = "done", "failed", "passed"
# Differential privacy (tabular/training/dp_sgd.py, group_stats.py): metrics and a param of the train stage.
PRIVACY_EPSILON = "privacy.epsilon"  # spent by DP-SGD
PRIVACY_DELTA = "privacy.delta"
PRIVACY_ENABLED = "privacy.enabled"  # param on every run: True | False
PRIVACY_METRICS = (PRIVACY_EPSILON, PRIVACY_DELTA)
GROUP_STATS_ARTIFACT = "privacy/group_stats.json"  # noisy group counts, to share outside the team
# On a `monitor` run (its own run, in the same experiment): what it watched and what it found.
MONITOR_OF_RUN = "monitor.training_run_id"  # the training run of the model whose predictions were logged
MONITOR_OF_VERSION = "monitor.model_version"
MONITOR_STATUS = "monitor.status"  # passed | failed | too_few_rows | untrusted_labels
TOO_FEW_ROWS = "too_few_rows"
UNTRUSTED_LABELS = "untrusted_labels"  # too small a share of the labels came from authenticated sources
# `tune`: each trial is a child run of the pipeline's run (MLflow's own parent tag nests it in the UI).
PARENT_RUN = "mlflow.parentRunId"
TUNE_TRIAL = "tune.trial"  # on a child run: its number in the search


def importance_metric(input_name: str) -> str:
    """`importance.<input name>`: a column's share of total importance (input names are valid metric names)."""
    return f"importance.{input_name}"


def stage_tag(name: str) -> str:
    """`stage.<name>`: done once a stage finished for the run (failed when its check said no).

    `import-model` sets `stage.train` too: the model is recorded, as train leaves it, for the stages after it.
    """
    return f"stage.{name}"


# --- model aliases -------------------------------------------------------------------------------
CHAMPION = "champion"  # what production serves; the gate compares with it
CHALLENGER = "challenger"  # the newest registered version

# --- artifact paths in a run ---------------------------------------------------------------------
SCHEMA_ARTIFACT = "schema.json"
ONNX_ARTIFACT = "onnx/model.onnx"
TRITON_FOLDER = "triton"  # the Triton model repository (triton/repository.py), in the run and in outputs/
VALIDATION_FOLDER = "validation"
PLOTS_FOLDER = "plots"
FAIRNESS_FOLDER = "fairness"
FAIRNESS_SUFFIX = "_by_group.json"  # evaluate logs fairness/<feature>_by_group.json per sensitive feature
GATE_REPORT_ARTIFACT = "gate/report.md"
EXPLAIN_FOLDER = "explain"  # what `explain` writes: the files below and importance.png
IMPORTANCE_ARTIFACT = "explain/importance.json"  # {"features": {column: share of total, summing to 1}, "method"}
MODEL_IMPORTANCE_ARTIFACT = "explain/model_importance.json"  # the same shape, from a glass-box model itself
LOCAL_ARTIFACT = "explain/local.json"  # a few held-out rows, each column's contribution to their output
TUNE_TRIALS_ARTIFACT = "tune/trials.json"  # every trial's params, scores and error, on the parent run
MONITOR_FOLDER = "monitor"  # report.md and report.json of a monitor run
MODEL_CARD_FOLDER = "model_card"  # `register` logs the card and the answers it was made from
MODEL_CARD_ARTIFACT = f"{MODEL_CARD_FOLDER}/MODEL_CARD.md"
MODEL_CARD_ANSWERS_ARTIFACT = f"{MODEL_CARD_FOLDER}/model_card.yaml"
RL_CHECKPOINT_FOLDER = "rl/checkpoint"  # RLlib's own checkpoint (pickled): for resuming on a trusted machine only
EPISODES_ARTIFACT = "rl/episodes.json"  # evaluate's seeded episodes and their returns

# --- files in outputs/ ---------------------------------------------------------------------------
RUN_FILE = "run.json"  # the run later stages (and the image's labels) attach to
VALIDATION_FILE = "validation.json"
TUNE_FILE = "tune.json"  # the run tune started and the best params, for `train`
EVALUATION_FILE = "evaluation.json"
IMPORTANCE_FILE = "importance.json"
GATE_FILE = "gate.json"
GATE_REPORT_FILE = "gate.md"
ONNX_FILE = "model.onnx"
REGISTERED_FILE = "registered.json"
PREDICTIONS_FILE = "predictions.parquet"  # `score` writes here unless given --output
MONITOR_FILE = "monitor.json"
MONITOR_REPORT_FILE = "monitor.md"
MODEL_CARD_FILE = "MODEL_CARD.md"

# --- environment ---------------------------------------------------------------------------------
IN_RAY_JOB = "MLOPS_IN_RAY_JOB"  # set in a Ray job's environment by ops/ray_job.py: the stage runs right there

SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RunRecord:
    """outputs/run.json: which run this folder's files came from, and where that run is recorded."""

    run_id: str
    experiment_id: str
    tracking_uri: str

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / RUN_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def git_sha(root: Path) -> str:
    """The commit being built: $GITHUB_SHA in Actions, else the checkout's HEAD, else `unknown`."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def source_ref() -> str:
    """The git ref CI built from (refs/heads/main, refs/pull/7/merge, ...); `local` off CI.

    A release ships only versions whose ref is the protected branch, so a laptop run never qualifies.
    """
    return os.environ.get("GITHUB_REF") or "local"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def trust_problems(tags: dict[str, str], protected_ref: str | None) -> list[str]:
    """Why a run (or a version, whose tags repeat its run's) may not be registered or shipped.

    `protected_ref` None skips the branch check: `register` compares refs itself.
    """
    problems = []
    if protected_ref is not None and tags.get(SOURCE_REF) != protected_ref:
        problems.append(f"it was registered from {tags.get(SOURCE_REF) or 'an unknown ref'}, not {protected_ref}")
    if tags.get(GATE_VERDICT) != PASSED:
        problems.append(f"its gate verdict is {tags.get(GATE_VERDICT) or 'missing'}, not passed")
    if tags.get(EXPORT_PARITY) != PASSED:
        problems.append(f"its ONNX parity check is {tags.get(EXPORT_PARITY) or 'missing'}, not passed")
    if not SHA256.fullmatch(tags.get(ONNX_SHA256, "")):
        problems.append(f"it carries no ONNX digest (tag {ONNX_SHA256})")
    return problems
