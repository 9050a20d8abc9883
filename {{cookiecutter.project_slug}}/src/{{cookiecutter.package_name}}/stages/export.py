"""export's bookkeeping, the same for every family: a failed parity check recorded and refused, or the ONNX
file written, logged with its Triton model repository, and its digest tagged. Runs inside the export
stage's `mlflow.start_run(run_id=...)`; the family's export stage converts and checks parity first."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import mlflow

from .. import lineage
from ..config import Config
from ..errors import CheckFailed
from ..triton import repository

if TYPE_CHECKING:
    import onnx


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
