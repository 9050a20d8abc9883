"""import-model: a model trained elsewhere, put behind the same gates, server and release as a trained one.

    python -m {{ cookiecutter.package_name }} import-model --model churn.onnx [--data table.csv] [--name ...]

Two kinds of file: an ONNX file that already meets the project's contract (serving/contract.py), or a
scikit-learn Pipeline saved with `skops.io.dump`. Everything about the model is checked before a run
exists: its inputs against the configured columns, its outputs against the task, a prediction on the
held-out rows, its classes against the target's labels. Then it is recorded as `train` records a
model (same experiment, tags, schema and test split, plus its origin), and evaluate -> explain -> gate -> export
run on it. `register` then treats the run like any other.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import lineage
from ...errors import UsageError
from ...serving import contract
from .. import config as configuration
from .. import frameworks
from ..config import Config
from ..dataio import data
from ..dataio.data import Schema
from ..frameworks import Framework, reason
from ..pure import predictions
from ..pure.predictions import ClassPredictions, Predictions

log = logging.getLogger(__name__)

FORMATS = {".onnx": "onnx", ".skops": "skops"}
CONTRACT = (
    "the model takes one input per configured feature, named as the schema's `input` names, float32 for "
    "numbers (NaN = missing) and strings otherwise (missing = 'missing'), each of shape [N, 1]"
)
STAGES_AFTER = ("evaluate", "explain", "gate", "export")


@dataclass(frozen=True)
class Candidate:
    """A model that passed every check: what `record` logs."""

    framework: Framework
    model: Any
    classes: list
    format: str  # onnx | skops
    predicted: Predictions  # on the held-out rows


@dataclass(frozen=True)
class Judged:
    """What the model is judged on: the configured table's schema, its held-out rows and every label."""

    schema: Schema
    test: pd.DataFrame  # held-out rows, as data.split gives them to train
    features: pd.DataFrame  # their model inputs (data.features)
    labels: list  # every target label in the table, sorted ([] for regression)


def model_format(path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"--model {path}: file not found")
    if kind := FORMATS.get(path.suffix.lower()):
        return kind
    raise UsageError(
        f"--model {path}: unknown model format {path.suffix or '(no extension)'}; give an ONNX file (.onnx) "
        "or a scikit-learn pipeline saved with skops.io.dump (.skops). Pickle and joblib files are not read: "
        "loading one runs whatever code it holds"
    )


def mismatch(path: Path, config: Config, differences: list[str]) -> UsageError:
    listed = "\n".join(f"  - {difference}" for difference in differences)
    return UsageError(
        f"--model {path} does not fit the configured {config.task} model on {config.data_path.name}'s columns; "
        f"nothing was recorded. Differences:\n{listed}\nThe contract: {CONTRACT}."
    )


def judged_on(config: Config) -> Judged:
    frame = data.read_table(config.data_path, config.data.csv)
    schema = data.schema(config, frame)
    labels = [] if schema.task == "regression" else sorted(data.target(frame, schema).dropna().unique().tolist())
    test = data.split(frame, schema, config.split.test_size, config.split.seed).test
    return Judged(schema, test, data.features(test, schema), labels)


def trial(path: Path, predict: Callable[[pd.DataFrame], Predictions], judged: Judged) -> Predictions:
    try:
        return predictions.in_chunks(predict, judged.features)
    except Exception as error:  # whatever the model raises on these inputs: report it, record nothing
        raise UsageError(
            f"--model {path} fails on the configured columns' {len(judged.test)} held-out rows "
            f"({reason(error)}); nothing was recorded. The contract: {CONTRACT}"
        ) from error


def label_differences(classes: list, labels: list, source: str) -> list[str]:
    known = {str(c) for c in classes}
    if unknown := [label for label in labels if str(label) not in known]:
        return [f"the target holds labels the model never predicts: {unknown} (its classes {classes}, {source})"]
    return []


# --- ONNX ----------------------------------------------------------------------------------------


def onnx_candidate(path: Path, config: Config, judged: Judged) -> Candidate:
    from ..dataio import onnx_model
    from ..frameworks.imported_onnx import ImportedOnnx, OnnxModel, contract_differences, input_kinds, parse

    payload = path.read_bytes()
    graph = parse(payload, f"--model {path}")
    try:
        session = onnx_model.session(payload)
    except Exception as error:  # onnxruntime's own load errors (unknown operator, opset)
        raise UsageError(f"--model {path}: onnxruntime cannot load it ({reason(error)})") from error
    if differences := contract_differences(session, judged.schema):
        raise mismatch(path, config, differences)
    kinds = input_kinds(session)
    predicted = trial(
        path, lambda rows: onnx_model.predict(session, contract.feeds(rows, kinds), judged.schema.task), judged
    )
    classes: list = []
    if isinstance(predicted, ClassPredictions):
        classes, source = onnx_classes(graph, judged.labels)
        differences = label_differences(classes, judged.labels, source)
        if len(classes) != predicted.probabilities.shape[1]:
            differences.append(
                f"its probabilities have {predicted.probabilities.shape[1]} columns, but there are "
                f"{len(classes)} classes ({classes}, {source})"
            )
        else:
            highest = np.asarray(classes, dtype=object)[predicted.probabilities.argmax(axis=1)].astype(str)
            if off := int(np.sum(highest != np.asarray(predicted.labels).astype(str))):
                differences.append(
                    f"on {off} of {len(highest)} rows its label is not the class of its highest probability, "
                    f"taking the classes in the order {classes} ({source}): write them, in probability order, "
                    f"into its `{contract.SCHEMA}` metadata (JSON) as its `classes` list"
                )
        if differences:
            raise mismatch(path, config, differences)
    model = OnnxModel(payload, classes)
    return Candidate(ImportedOnnx(), model, classes, "onnx", predicted)


def onnx_classes(graph: Any, labels: list) -> tuple[list, str]:
    """The label order of the probabilities: the file's own `mlops.schema` classes, else the labels sorted
    (how scikit-learn and this project's trainers order them)."""
    metadata = {entry.key: entry.value for entry in graph.metadata_props}
    try:
        described = json.loads(metadata.get(contract.SCHEMA) or "{}")
    except json.JSONDecodeError:
        described = {}
    if isinstance(described, dict) and isinstance(described.get("classes"), list) and described["classes"]:
        return described["classes"], f"from its {contract.SCHEMA} metadata"
    return labels, "the target's labels sorted"


# --- scikit-learn pipelines (skops) --------------------------------------------------------------


def sklearn_framework(path: Path) -> tuple[Framework, list[str]]:
    """This project's scikit-learn framework and the types it trusts in a skops file."""
    try:
        framework = frameworks.load("sklearn")
    except UsageError as error:
        raise UsageError(
            f"--model {path}: a scikit-learn pipeline can be imported only into a project generated with "
            "framework=sklearn: reading, logging and converting it to ONNX live in frameworks/scikit_learn.py, "
            "which this project does not have. Convert the pipeline to ONNX with skl2onnx (installed here) "
            "to this project's contract, and import the .onnx file"
        ) from error
    trusted: list[str] = importlib.import_module(type(framework).__module__).TRUSTED_TYPES
    return framework, trusted


def skops_candidate(path: Path, config: Config, judged: Judged) -> Candidate:
    import skops.io
    from sklearn.base import is_classifier, is_regressor
    from sklearn.pipeline import Pipeline

    framework, trusted = sklearn_framework(path)
    try:
        found = skops.io.get_untrusted_types(file=path)
    except Exception as error:  # not a zip, no schema: not what skops.io.dump writes
        raise UsageError(f"--model {path}: not a readable skops file ({reason(error)})") from error
    if untrusted := [name for name in found if name not in trusted]:
        raise UsageError(
            f"--model {path} holds types this project does not trust: {', '.join(untrusted)}. skops would "
            "rebuild them by running their code, so nothing was loaded or recorded. If you trust where the "
            "file comes from, add them to TRUSTED_TYPES in frameworks/scikit_learn.py (a reviewed change: "
            "every later stage reads the model with that list) and import again"
        )
    try:
        pipeline = skops.io.load(path, trusted=trusted)
    except Exception as error:
        raise UsageError(f"--model {path}: not a readable skops file ({reason(error)})") from error
    if not isinstance(pipeline, Pipeline):
        raise UsageError(
            f"--model {path} holds a {type(pipeline).__name__}, not a scikit-learn Pipeline: wrap it "
            "(sklearn.pipeline.make_pipeline(...)) with its preprocessing and dump that"
        )

    schema, differences = judged.schema, []
    expected = list(schema.input_kinds)
    names = getattr(pipeline, "feature_names_in_", None)
    if names is None:
        differences.append(
            "it was fitted without column names (on an array): fit it on a DataFrame of the inputs "
            f"{', '.join(expected)}"
        )
    else:
        names = [str(name) for name in names]
        if missing := [name for name in expected if name not in names]:
            differences.append(f"missing inputs (configured, not in its feature_names_in_): {', '.join(missing)}")
        if unexpected := [name for name in names if name not in expected]:
            differences.append(f"unexpected inputs (in its feature_names_in_, not configured): {', '.join(unexpected)}")
        if not missing and not unexpected and names != expected:
            differences.append(
                f"its inputs are in another order: {', '.join(names)}; configured: {', '.join(expected)}"
            )
    if schema.task == "regression" and not is_regressor(pipeline):
        differences.append(f"the task is regression but it is a {type(pipeline[-1]).__name__}, not a regressor")
    if schema.task != "regression" and not (is_classifier(pipeline) and hasattr(pipeline, "predict_proba")):
        differences.append(
            f"the task is {schema.task} but its {type(pipeline[-1]).__name__} is not a classifier with predict_proba"
        )
    if differences:
        raise mismatch(path, config, differences)

    predicted = trial(path, lambda rows: framework.predict(pipeline, rows), judged)
    classes = framework.classes(pipeline)
    if differences := label_differences(classes, judged.labels, "its classes_"):
        raise mismatch(path, config, differences)
    try:  # export converts it; a pipeline skl2onnx cannot convert is refused now, not after the gate
        framework.to_onnx(pipeline, schema)
    except Exception as error:
        raise UsageError(
            f"--model {path}: skl2onnx cannot convert it to ONNX ({reason(error)}), and `export` must; "
            "nothing was recorded. Use steps skl2onnx supports, or convert it yourself and import the .onnx file"
        ) from error
    return Candidate(framework, pipeline, classes, "skops", predicted)


# --- recording -----------------------------------------------------------------------------------


def validated(config: Config) -> Path:
    """outputs/validation.json for this data file, validating it first when no current pass is saved."""
    from ..stages import STAGES

    if STAGES["validate"].current(config) is None:
        STAGES["validate"].run(config)
    return config.outputs / lineage.VALIDATION_FILE


def record(config: Config, judged: Judged, candidate: Candidate, source: Path, run_name: str) -> str:
    """The run `train` would have left, with the imported model and its origin; deleted if anything fails."""
    import mlflow

    from ... import tracking
    from ...stages.train import finish, record_origin
    from ..stages.train import log_test_split

    client = tracking.connect(config)
    validated(config)  # outputs/validation.json, which record_origin logs with the run
    digest = lineage.sha256_of(source)
    experiment_id = tracking.experiment_id(config, client)
    run_id = None
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as active:
            run_id = active.info.run_id
            record_origin(
                config,
                candidate.framework.name,
                {
                    lineage.ORIGIN: lineage.IMPORTED,
                    lineage.IMPORT_SOURCE: source.name,
                    lineage.IMPORT_SHA256: digest,
                    lineage.IMPORT_FORMAT: candidate.format,
                },
            )
            mlflow.log_params(
                {
                    "framework": candidate.framework.name,
                    "task": config.task,
                    "data.path": config.data.path.name,
                    "data.sha256": data.fingerprint(config.data_path),
                    "split.test_size": config.split.test_size,
                    "split.seed": config.split.seed,
                    "rows.test": len(judged.test),
                    "import.source": source.name,
                }
            )
            mlflow.log_dict(judged.schema.as_dict(), lineage.SCHEMA_ARTIFACT)
            model_uri = candidate.framework.log_model(candidate.model, judged.features, candidate.predicted)
            log_test_split(judged.test)
            finish(config, active.info, model_uri, candidate.classes)
    except BaseException:
        if run_id is not None:  # no half-recorded run (or model) for a later stage to find
            for logged in client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'"):
                client.delete_logged_model(logged.model_id)
            client.delete_run(run_id)
        raise
    log.info("recorded %s (sha256 %s) as run %s", source.name, digest[:12], run_id)
    return run_id


def run(args: argparse.Namespace) -> None:
    from ..stages import STAGES

    config = configuration.load(args.config, data=args.data, target=args.target)
    source: Path = args.model
    kind = model_format(source)
    judged = judged_on(config)
    candidate = (onnx_candidate if kind == "onnx" else skops_candidate)(source, config, judged)
    run_id = record(config, judged, candidate, source, args.name or f"imported-{source.stem}")
    if args.record_only:
        log.info("run %s recorded: `evaluate`, `explain`, `gate` and `export` come next", run_id)
        return
    for name in STAGES_AFTER:
        STAGES[name].run(config, run_id)
    log.info("%s passed evaluate, gate and export as run %s: `register` comes next", source.name, run_id)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="an ONNX file (.onnx) or a skops pipeline (.skops)")
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml")
    parser.add_argument("--data", type=Path, help="table to judge it on instead of config data.path")
    parser.add_argument("--target", help="target column to use instead of config data.target")
    parser.add_argument("--name", help="MLflow run name (default: imported-<file name>)")
    parser.add_argument(
        "--record-only",
        action="store_true",
        help="only record the run; run evaluate, explain, gate and export yourself",
    )


COMMANDS = {
    "import-model": (
        "record a model trained elsewhere (ONNX or skops) and run evaluate, explain, gate and export on it",
        add_arguments,
        run,
    ),
}
