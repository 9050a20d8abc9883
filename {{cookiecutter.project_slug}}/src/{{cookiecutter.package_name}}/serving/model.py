"""The ONNX model: one onnxruntime session per process, its contract read once, a warm-up predict."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import contract
from .settings import Settings

log = logging.getLogger(__name__)
# A value no training set contains: used to probe whether the model copes with unseen categories.
UNSEEN_PROBE = "\x00unseen-category-probe"


class ModelError(RuntimeError):
    """The file is missing or does not follow the ONNX contract: the server must not start."""


@dataclass(frozen=True)
class Feature:
    name: str  # the column's name, as clients send it
    kind: str  # "number" | "string"
    input: str  # the ONNX input it feeds (contract.input_names)
    categories: tuple[str, ...] = ()
    # True when the model errors on a category it was not trained on (found by probing at start-up):
    # then the server rejects such values itself with a 422 instead of letting onnxruntime fail.
    strict_categories: bool = False


@dataclass
class Model:
    session: ort.InferenceSession
    path: Path
    task: str
    features: list[Feature]
    classes: list
    metadata: dict[str, str]
    providers: list[str]
    outputs: tuple[str, ...]
    schema: dict = field(default_factory=dict)

    @property
    def classification(self) -> bool:
        return self.task != "regression"

    def run(self, feeds: dict[str, np.ndarray]) -> dict:
        """Predict and shape the response body (numpy arrays; orjson serialises them natively)."""
        return self.answer(self.infer(feeds))

    def infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The model's outputs, one row per input row along the first axis (batcher.py slices them)."""
        return self.session.run(self.outputs, feeds)

    def answer(self, results: list[np.ndarray]) -> dict:
        """The response body for `infer`'s outputs (or a slice of them)."""
        if self.classification:
            labels, probabilities = results
            flat = labels.reshape(-1)
            # Text labels as a list: orjson serialises numeric arrays only.
            predictions = flat.tolist() if flat.dtype == object else flat
            return {"predictions": predictions, "probabilities": probabilities, "classes": self.classes}
        return {"predictions": results[0].reshape(-1)}

    def example_feeds(self, rows: int = 1, unseen: str | None = None) -> dict[str, np.ndarray]:
        """Plausible inputs from the schema alone: zeros and each column's first known category."""
        columns: dict[str, list[float | str]] = {}
        for feature in self.features:
            value: float | str
            if feature.kind == contract.NUMBER:
                value = 0.0
            elif unseen == feature.name:
                value = UNSEEN_PROBE
            else:
                value = feature.categories[0] if feature.categories else contract.MISSING_CATEGORY
            columns[feature.input] = [value] * rows
        return contract.feeds(columns, {feature.input: feature.kind for feature in self.features})

    def describe(self) -> dict:
        return {
            "model_name": self.metadata.get(contract.MODEL_NAME, ""),
            "model_version": self.metadata.get(contract.MODEL_VERSION, ""),
            "run_id": self.metadata.get(contract.RUN_ID, ""),
            "git_sha": self.metadata.get(contract.GIT_SHA, ""),
            "task": self.task,
            "target": self.schema.get("target"),
            "classes": self.classes if self.classification else None,
            "input_schema": self.schema.get("features", []),
            "strict_categories": [f.name for f in self.features if f.strict_categories],
            "providers": self.providers,
            "path": str(self.path),
        }


def choose_providers(requested: tuple[str, ...]) -> list[str]:
    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelError(
                f"ORT_PROVIDERS: {', '.join(missing)} not available in this onnxruntime "
                f"build (available: {', '.join(available)})"
            )
        return list(requested)
    # CUDA first when this build has it (onnxruntime-gpu); onnxruntime falls back to CPU, with a
    # logged error, when the library is there but no GPU or driver is.
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def _contract(session: ort.InferenceSession, path: Path) -> tuple[dict, dict[str, str]]:
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    if contract.SCHEMA not in metadata:
        raise ModelError(
            f"{path}: no '{contract.SCHEMA}' metadata; export the model with the project's "
            "`export` stage, which writes it"
        )
    try:
        schema = json.loads(metadata[contract.SCHEMA])
    except json.JSONDecodeError as error:
        raise ModelError(f"{path}: '{contract.SCHEMA}' metadata is not JSON: {error}") from error
    return schema, metadata


def _check_io(session: ort.InferenceSession, path: Path, schema: dict, task: str) -> tuple[str, ...]:
    inputs = {i.name: i.type for i in session.get_inputs()}
    declared = {name: contract.input_type(kind) for name, kind in contract.kinds(schema).items()}
    if inputs != declared:
        raise ModelError(f"{path}: graph inputs {inputs} do not match the '{contract.SCHEMA}' features {declared}")
    wanted = contract.outputs(task)
    names = {o.name for o in session.get_outputs()}
    if not set(wanted) <= names:
        raise ModelError(f"{path}: a {task} model must have outputs {list(wanted)}; it has {sorted(names)}")
    return wanted


def load(settings: Settings) -> Model:
    path = settings.model_path
    if not path.is_file():
        raise ModelError(f"{path}: model file not found (set MODEL_PATH, or run the pipeline's export stage)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    # Spinning threads burn a core between requests for a few microseconds of latency: not worth it
    # beside uvicorn workers on the same cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = choose_providers(settings.providers)
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own pybind types
        raise ModelError(f"{path}: onnxruntime cannot load it: {error}") from error
    schema, metadata = _contract(session, path)
    if settings.model_version:
        metadata[contract.MODEL_VERSION] = settings.model_version
    task = schema.get("task")
    if task not in contract.TASKS:
        raise ModelError(f"{path}: '{contract.SCHEMA}' task {task!r} is not one of {', '.join(contract.TASKS)}")
    outputs = _check_io(session, path, schema, task)
    features = [
        Feature(f["name"], f["type"], f.get("input", f["name"]), tuple(str(c) for c in f.get("categories", [])))
        for f in schema["features"]
    ]
    model = Model(
        session=session,
        path=path,
        task=task,
        features=features,
        classes=schema.get("classes", []),
        metadata=metadata,
        providers=session.get_providers(),
        outputs=outputs,
        schema=schema,
    )
    log.info("loaded %s: %s model, %d inputs, providers %s", path, task, len(features), model.providers)
    return model


def warm_up(model: Model) -> None:
    """One predict (first-run allocations happen here, not in a client's request), then probe each
    categorical input with an unseen value to learn whether the model tolerates it."""
    body = model.run(model.example_feeds(rows=2))
    rows = len(body["predictions"])
    if rows != 2:
        raise ModelError(f"{model.path}: warm-up predicted {rows} rows for 2 inputs")
    for index, feature in enumerate(model.features):
        if feature.kind != "string":
            continue
        try:
            model.run(model.example_feeds(unseen=feature.name))
        except Exception:  # the model's encoder refuses unknown values
            model.features[index] = dataclasses.replace(feature, strict_categories=True)
            log.info("%s: the model refuses unseen categories; the server will reject them", feature.name)
