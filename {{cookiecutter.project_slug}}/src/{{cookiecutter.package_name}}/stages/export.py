"""export's bookkeeping, the same for every family: a failed parity check recorded and refused, or the ONNX
file written, logged with its Triton model repository, and its digest tagged. Runs inside the export
stage's `mlflow.start_run(run_id=...)`; the family's export stage converts and checks parity first."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import mlflow

from .. import lineage
from ..config import Config
from ..errors import CheckFailed
from ..triton import repository
from . import StageResult

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exported(StageResult):
    """What a family's export stage returns: the ONNX file written, its size, and how far it was from the
    native model on the rows (or observations) parity compared."""

    run_id: str
    path: Path
    max_abs_diff: float
    size_bytes: int


@dataclass(frozen=True)
class Parity:
    """A family's parity check of its ONNX file against the native model."""

    checked_on: str  # what was compared, for the messages: "2000 held-out rows"
    max_abs_diff: float
    problems: list[str]  # empty when the file may be written
    metrics: dict[str, float]  # the check's own measures, logged whatever the verdict


def conclude(config: Config, run_id: str, model: onnx.ModelProto, parity: Parity) -> Exported:
    """The ending of every family's export: the check logged to the run, then refused or published."""
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({"export.parity_max_abs_diff": parity.max_abs_diff} | parity.metrics)
        if parity.problems:
            refuse(parity.problems, parity.checked_on)
        target = publish(config, model)
    size = target.stat().st_size
    log.info(
        "exported %s (%.1f KB); onnxruntime parity on %s: max abs diff %.3g",
        target,
        size / 1024,
        parity.checked_on,
        parity.max_abs_diff,
    )
    return Exported(run_id=run_id, path=target, max_abs_diff=parity.max_abs_diff, size_bytes=size)


def refuse(problems: list[str], checked_on: str) -> NoReturn:
    """Record the failed parity check on the run and stop: no ONNX file is written."""
    mlflow.set_tags({lineage.stage_tag("export"): lineage.FAILED, lineage.EXPORT_PARITY: lineage.FAILED})
    raise CheckFailed(f"ONNX parity failed on {checked_on}: {'; '.join(problems)}. No ONNX file was written.")


def publish(config: Config, model: onnx.ModelProto) -> Path:
    """outputs/model.onnx and its Triton repository, logged to the active run; the file's SHA-256 tagged."""
    config.outputs.mkdir(parents=True, exist_ok=True)
    target = config.outputs / lineage.ONNX_FILE
    # Written beside the target and renamed: a reader never sees half a model.
    payload = model.SerializeToString()
    with tempfile.NamedTemporaryFile(dir=config.outputs, suffix=".onnx.tmp", delete=False) as handle:
        handle.write(payload)
    os.replace(handle.name, target)
    mlflow.log_artifact(str(target), Path(lineage.ONNX_ARTIFACT).parent.as_posix())
    # The same file as a Triton model repository, for a release with `serve.server: triton`.
    triton = repository.write(
        config.outputs / lineage.TRITON_FOLDER, config.tracking.model_name, model, config.serve.triton
    )
    mlflow.log_artifacts(str(triton), f"{lineage.TRITON_FOLDER}/{triton.name}")
    # The digest is what `register` and the release compare every later copy of the file with.
    mlflow.set_tags(
        {
            lineage.EXPORT_PARITY: lineage.PASSED,
            lineage.ONNX_SHA256: hashlib.sha256(payload).hexdigest(),
            lineage.stage_tag("export"): lineage.DONE,
        }
    )
    return target
