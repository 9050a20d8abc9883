"""export: convert the run's model to ONNX, prove onnxruntime reproduces it, then write and log it."""

from __future__ import annotations

import numpy as np

from ... import lineage
from ...stages.export import Exported, Parity, conclude
from ..config import Config
from ..dataio import data, onnx_model
from ..pure.predictions import ClassPredictions, Predictions, ValuePredictions, in_chunks
from .context import attach


def parity(native: Predictions, exported: Predictions, tolerance: float) -> tuple[float, list[str]]:
    """Largest difference and what is wrong: labels must be equal, numbers within tolerance.

    Values are compared relative to their size above 1 (a 0.0001 error on a rate of 12.5 is float32
    rounding, not an export fault); probabilities, all below 1, absolutely.
    """
    problems = []
    if isinstance(native, ClassPredictions) and isinstance(exported, ClassPredictions):
        mismatched = int(np.sum(np.asarray(native.labels).astype(str) != np.asarray(exported.labels).astype(str)))
        if mismatched:
            problems.append(f"{mismatched} labels differ")
        expected, actual = native.probabilities, exported.probabilities
    elif isinstance(native, ValuePredictions) and isinstance(exported, ValuePredictions):
        expected, actual = native.values.reshape(-1), exported.values.reshape(-1)
    else:
        return float("inf"), [f"the native model gives {type(native).__name__}, the export {type(exported).__name__}"]
    difference = np.abs(np.asarray(expected, np.float64) - np.asarray(actual, np.float64))
    worst = float(difference.max())
    allowed = tolerance * np.maximum(1.0, np.abs(np.asarray(expected, np.float64)))
    if over := int(np.sum(difference > allowed)):
        problems.append(f"{over} values differ by more than {tolerance:g} (max {worst:.3g})")
    return worst, problems


def run(config: Config, run_id: str | None = None) -> Exported:
    context = attach(config, run_id)
    schema = context.schema
    rows = context.test_rows()
    features = data.features(rows, schema)
    model = context.framework.load_model(context.model_uri)
    native = in_chunks(lambda part: context.framework.predict(model, part), features)

    converted = context.framework.to_onnx(model, schema)
    tags = context.run.data.tags
    # No model version inside the file: a version exists only once `register` has checked this file.
    stamped = onnx_model.stamp(
        converted,
        schema,
        context.classes,
        {
            "model_name": config.tracking.model_name,
            "run_id": context.run_id,
            "git_sha": tags.get(lineage.GIT_SHA, "unknown"),
            # A model trained elsewhere carries the file it was imported from (`mlops.imported_from`).
            **(
                {"imported_from": f"{tags[lineage.IMPORT_SOURCE]} sha256:{tags.get(lineage.IMPORT_SHA256, '')}"}
                if lineage.IMPORT_SOURCE in tags
                else {}
            ),
        },
    )
    # In slices of rows: the string inputs are object arrays, and onnxruntime's one-hot matrix of the
    # whole test split at once would be the largest thing in memory.
    session = onnx_model.session(stamped)
    exported = in_chunks(
        lambda part: onnx_model.predict(session, onnx_model.feeds(part, schema), schema.task), features
    )
    worst, problems = parity(native, exported, config.export.parity_tolerance)

    return conclude(config, context.run_id, stamped, Parity(f"{len(rows)} held-out rows", worst, problems, {}))
