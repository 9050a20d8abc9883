"""Model frameworks behind one interface (base.Framework), so every stage is the same whatever trains the model.

Adding a framework: a module here with one Framework subclass whose `name` is its key below and its
default PARAMS and TUNE_SPACE (config.yaml's model.params and tune.space, as literals), that key in Name
and MODULES, and its dependencies in pyproject.toml (in the template: its own block there, its lock file
and the name in the `framework` choices; the template's tests/test_frameworks.py checks they agree).
The template's post-generation hook reads MODULES to delete the frameworks a project was not generated for.
IMPORTED lists the frameworks of models brought in with `import-model` (not trained here): in no
framework's MODULES, so every project keeps them.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ...errors import UntrustedModel, UsageError
from .base import Framework

if TYPE_CHECKING:
    import pandas as pd

    from ..pure.predictions import Predictions

__all__ = ["IMPORTED", "MODULES", "Framework", "Name", "declared", "load", "use_keras_backend"]

# config.yaml's model.framework.
Name = Literal["sklearn", "pytorch", "keras", "tensorflow", "ebm"]

# The modules each framework needs, the one defining its Framework subclass first: in this folder, or in
# ../training/ for a training step only that framework runs (DP-SGD).
# A plain literal: hooks/post_gen_project.py reads it without importing this package.
MODULES: dict[Name, tuple[str, ...]] = {
    "sklearn": ("scikit_learn",),
    "pytorch": ("pytorch", "tabular", "dp_sgd"),
    "keras": ("keras_torch", "keras3", "tabular"),
    "tensorflow": ("keras_tensorflow", "keras3", "tabular"),
    "ebm": ("explainable_boosting",),
}
# A run's framework tag for a model `import-model` brought in as an ONNX file -> its module here.
IMPORTED: dict[str, tuple[str, ...]] = {"onnx": ("imported_onnx",)}


def load(name: str) -> Framework:
    """The framework called `name`; only its own module is imported (torch and keras are slow to import)."""
    known: dict[str, tuple[str, ...]] = {str(key): modules for key, modules in MODULES.items()} | IMPORTED
    if name not in known:
        raise UsageError(f"model.framework: unknown {name!r} (known: {', '.join(MODULES)})")
    module_name = known[name][0]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as error:
        if error.name and error.name.endswith(module_name):
            raise UsageError(
                f"model.framework: {name!r} is not part of this project (it was generated "
                "for another framework); bake a new project with that framework"
            ) from error
        raise
    (kind,) = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Framework) and vars(value).get("name") == name
    ]
    return kind()


def declared(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The framework's PARAMS and TUNE_SPACE (config.yaml's model.params and tune.space when it leaves them out),
    from the first of its MODULES that assigns them; ({}, {}) for one that declares none (an imported model's).

    Read from the source as literals, never imported: config.yaml is read by every command (torch and keras
    take seconds to import), and the project generator reads them with the standard library alone.
    """
    found: dict[str, dict[str, Any]] = {}
    modules: dict[str, tuple[str, ...]] = {str(key): value for key, value in MODULES.items()}
    for module in modules.get(name, ()):
        path = Path(__file__).with_name(f"{module}.py")
        if not path.is_file():  # ../training's modules declare no parameters
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
                continue
            if (variable := node.targets[0].id) in ("PARAMS", "TUNE_SPACE") and variable not in found:
                found[variable] = ast.literal_eval(node.value)
    return found.get("PARAMS", {}), found.get("TUNE_SPACE", {})


def use_keras_backend(backend: str) -> None:
    """Run Keras on `backend` in this process: called by a Keras framework's module before keras is imported.

    Keras reads KERAS_BACKEND once, when first imported, and one process cannot mix backends: the
    project's framework decides, whatever the environment says, and a Keras already running on
    another backend (a notebook kernel that imported it first) is an error rather than a wrong model.
    """
    keras = sys.modules.get("keras")
    if keras is None:
        os.environ["KERAS_BACKEND"] = backend
        return
    running = keras.backend.backend()
    if running != backend:
        raise UsageError(
            f"Keras is already running on the {running!r} backend in this process, and this project's model "
            f"needs {backend!r}: start a new process (restart the notebook's kernel) with KERAS_BACKEND={backend}"
        )


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
        "in it was run. Train again for a clean model, and check who can write to the tracking server's artifacts."
    )


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


def log_skops(
    model: Any, features: pd.DataFrame, predicted: Predictions, trusted: list[str], requirements: Sequence[str] = ()
) -> str:
    """A scikit-learn-style model logged to the active run in skops format (no pickle), with five rows as its
    example and signature; `requirements` are pip pins beyond scikit-learn's and skops'. Returns its URI."""
    import mlflow
    from mlflow.models import infer_signature

    example = features.head(5)
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        input_example=example,
        signature=infer_signature(example, predicted.point[:5]),
        serialization_format="skops",  # stated: with a Databricks tracking URI, MLflow would pick cloudpickle
        skops_trusted_types=trusted,
        # Stated, not inferred: inference re-loads the model in a subprocess (seconds per run).
        pip_requirements=[*mlflow.sklearn.get_default_pip_requirements(include_skops=True), *requirements],
    )
    return info.model_uri


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
