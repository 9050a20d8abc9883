"""Model frameworks behind one interface, so every stage is the same whatever trains the model.

A framework module provides:
    train(features, target, schema, params, split) -> model   (split: seed, validation_size)
    classes(model) -> list            class labels in probability-column order ([] for regression)
    predict(model, features) -> Predictions
    log_model(model, features, predicted) -> model URI   (inside an active MLflow run)
    load_model(uri) -> model
    to_onnx(model, schema) -> onnx.ModelProto with the project's ONNX contract (see onnx_model.py)
Adding a framework is adding one module here and one line to MODULES.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import UsageError

MODULES = {"sklearn": "scikit_learn", "pytorch": "pytorch", "keras": "keras3"}


def load(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"{__name__}.{MODULES[name]}")
    except ModuleNotFoundError as error:
        if error.name and error.name.endswith(MODULES.get(name, name)):
            raise UsageError(f"model.framework: {name!r} is not part of this project (it was generated "
                             "for another framework); bake a new project with that framework") from error
        raise
