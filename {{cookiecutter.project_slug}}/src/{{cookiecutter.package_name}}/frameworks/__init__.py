"""Model frameworks behind one interface, so every stage is the same whatever trains the model.

A framework module provides:
    train(features, target, schema, params, split) -> model   (split: seed, validation_size)
    classes(model) -> list            class labels in probability-column order ([] for regression)
    predict(model, features) -> Predictions
    log_model(model, features, predicted) -> model URI   (inside an active MLflow run)
    load_model(uri) -> model    never unpickles: see model_files() below
    to_onnx(model, schema) -> onnx.ModelProto with the project's ONNX contract (see onnx_model.py)
Adding a framework is adding one module here and one line to MODULES.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import UntrustedModel, UsageError

MODULES = {"sklearn": "scikit_learn", "pytorch": "pytorch", "keras": "keras3"}


def load(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"{__name__}.{MODULES[name]}")
    except ModuleNotFoundError as error:
        if error.name and error.name.endswith(MODULES.get(name, name)):
            raise UsageError(f"model.framework: {name!r} is not part of this project (it was generated "
                             "for another framework); bake a new project with that framework") from error
        raise


def model_files(uri: str) -> Path:
    """The files of the logged model `uri` (`models:/m-…`), downloaded from the tracking server.

    None of them is trusted: whoever can write to the server's artifact store can change any of them,
    MLmodel included. So a framework reads only the files its own log_model wrote, at paths fixed in
    its code (never taken from MLmodel), in formats that hold data and cannot run code on loading.
    """
    import mlflow

    # `models:/<id>/<path>` reads <id> as a registered name: go through the logged model's location.
    location = mlflow.MlflowClient().get_logged_model(uri.removeprefix("models:/")).artifact_location
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=location))


def untrusted(uri: str, file: str, problem: str) -> UntrustedModel:
    return UntrustedModel(
        f"model {uri}: {file} {problem}. This is not what the train stage writes, so it was refused and nothing "
        "in it was run. Train again for a clean model, and check who can write to the tracking server's artifacts.")


# Loaders' advice on turning their safety off: the one thing not to do with a file from the server.
_DISARMING = re.compile(r"weights_only|safe_mode=False|unsafe_deserialization|trusted source|Check the documentation")


def reason(error: Exception) -> str:
    """What a loader found wrong with a file, on one line, without its advice to load it unsafely."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(str(error).split()))
    return f"{type(error).__name__}: {' '.join(s for s in sentences if not _DISARMING.search(s))}"


def read_json(uri: str, folder: Path, file: str, expected_type: type) -> Any:
    try:
        value = json.loads((folder / file).read_text())
    except (OSError, ValueError) as error:
        raise untrusted(uri, file, f"is missing or not JSON ({error})") from error
    if not isinstance(value, expected_type):
        raise untrusted(uri, file, f"holds a {type(value).__name__}, not a {expected_type.__name__}")
    return value


def read_skops(uri: str, folder: Path, file: str, trusted: list[str], expected_type: type) -> Any:
    """A scikit-learn object from a skops file (a zip of JSON and plain arrays, no pickle).

    skops rebuilds only the types it trusts by default (scikit-learn's estimators, numpy, builtins)
    and those in `trusted`, a list from this code, not from the file.
    """
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        value = skops.io.load(folder / file, trusted=trusted)
    except UntrustedTypesFoundException as error:
        raise untrusted(uri, file, f"holds types this project does not trust ({reason(error)})") from error
    except Exception as error:  # missing, not a zip, no schema, a malformed node: not what skops.io.dump wrote
        raise untrusted(uri, file, f"is not a readable skops file ({reason(error)})") from error
    if not isinstance(value, expected_type):
        raise untrusted(uri, file, f"holds a {type(value).__name__}, not a {expected_type.__name__}")
    return value
