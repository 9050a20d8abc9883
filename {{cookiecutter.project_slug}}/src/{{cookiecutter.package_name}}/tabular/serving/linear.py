"""The linear model inside the served ONNX file: its weights, its link function and its feature transform.

Encrypted inference (encrypted.py) works only for a model whose scores are linear in its prepared
features. An exported linear model ends in one ONNX-ML LinearClassifier or LinearRegressor node:
what comes before it is the feature transform (imputation, scaling, one-hot encoding), what comes
after renames outputs or L1-normalises probabilities. The weights are read from that node, in the
very file the server serves, rather than from a second file written by `export`: nothing more to
log, ship, digest and keep in step with the model, and a linear ONNX file brought in by
`import-model` qualifies too. The transform is cut out as its own ONNX graph and published to
clients, who run it on their rows in plaintext before encrypting them: the price is that the
transform (medians, means, scales, categories) is known to every client; the weights are not.

At start-up, the extracted weights are checked against the model itself on synthetic rows: a graph
that does more after the linear node than this module knows about is refused, not mis-served.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from ...serving import contract
from ...serving.model import Model, ModelError

if TYPE_CHECKING:  # onnx is imported only when the encrypted endpoint is on
    from onnx import ModelProto, NodeProto

LINEAR_OPS = ("LinearClassifier", "LinearRegressor")
LINKS = ("identity", "logistic", "softmax")
CHECK_ROWS = 64
CHECK_TOLERANCE = 1e-4  # float32 inside onnxruntime, float64 here


class NotLinear(ModelError):
    """The served model is not one the encrypted endpoint can compute: the server must not start."""


@dataclass(frozen=True)
class LinearModel:
    weights: np.ndarray  # (scores, features), float64
    bias: np.ndarray  # (scores,)
    link: str  # one of LINKS: how the client turns decrypted scores into predictions
    transform: bytes  # ONNX: the model's inputs -> the prepared features (float [N, features])

    @property
    def features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def transform_sha256(self) -> str:
        return hashlib.sha256(self.transform).hexdigest()

    def scores(self, prepared: np.ndarray) -> np.ndarray:
        """Plaintext scores of prepared rows: what the encrypted computation gives, up to CKKS noise."""
        return np.asarray(prepared, np.float64) @ self.weights.T + self.bias


def linked(scores: np.ndarray, link: str) -> np.ndarray:
    """Decrypted scores (rows, scores) -> probabilities per class, or values for regression."""
    if link == "identity":
        return scores[:, 0]
    if link == "logistic":  # one score per row: the second class's log-odds
        positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        return np.stack([1.0 - positive, positive], axis=1)
    if link == "softmax":
        exponentials = np.exp(scores - scores.max(axis=1, keepdims=True))
        return exponentials / exponentials.sum(axis=1, keepdims=True)
    raise ValueError(f"link {link!r}: expected one of {', '.join(LINKS)}")


def _refuse(path: Path, problem: str) -> NotLinear:
    return NotLinear(
        f"{path}: ENCRYPTED_INFERENCE needs a linear model, and {problem}. Train one with "
        "`model.estimator: linear` (sklearn framework) in config.yaml, or set ENCRYPTED_INFERENCE=false."
    )


def _weights(path: Path, node: NodeProto, classes: list) -> tuple[np.ndarray, np.ndarray, str]:
    from onnx import helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    coefficients = np.asarray(attributes.get("coefficients", []), np.float64)
    intercepts = np.asarray(attributes.get("intercepts", []), np.float64)
    post = attributes.get("post_transform", b"NONE").decode()
    rows = max(len(intercepts), 1)
    if coefficients.size == 0 or coefficients.size % rows:
        raise _refuse(path, f"its {node.op_type} has {coefficients.size} coefficients for {rows} scores")
    weights = coefficients.reshape(rows, -1)
    bias = intercepts if len(intercepts) else np.zeros(rows)
    if node.op_type == "LinearRegressor":
        if rows != 1 or post != "NONE":
            raise _refuse(path, f"its LinearRegressor gives {rows} targets with post_transform {post}")
        return weights, bias, "identity"
    if post == "LOGISTIC" and len(classes) == 2 and rows in (1, 2):
        if rows == 2:  # skl2onnx writes a binary model as two opposite scores: compute one
            if not (np.allclose(weights[0], -weights[1]) and np.isclose(bias[0], -bias[1])):
                raise _refuse(path, "its binary LinearClassifier's two scores are not opposites")
            weights, bias = weights[1:], bias[1:]
        return weights, bias, "logistic"
    if post == "SOFTMAX" and rows == len(classes) > 2:
        return weights, bias, "softmax"
    raise _refuse(path, f"its LinearClassifier's post_transform {post} with {rows} scores for {len(classes)} classes")


def _check(model: Model, linear: LinearModel) -> None:
    """The extracted weights must reproduce the served model's own outputs on synthetic rows."""
    rng = np.random.default_rng(0)
    columns: dict[str, list] = {}
    for feature in model.features:
        if feature.kind == contract.NUMBER:
            columns[feature.input] = rng.normal(0.0, 100.0, CHECK_ROWS).tolist()
        else:
            known = [*feature.categories, contract.MISSING_CATEGORY]
            columns[feature.input] = [known[i % len(known)] for i in range(CHECK_ROWS)]
    feeds = contract.feeds(columns, {f.input: f.kind for f in model.features})
    transform = ort.InferenceSession(linear.transform, providers=["CPUExecutionProvider"])
    (prepared,) = transform.run(None, feeds)
    expected = model.session.run([model.outputs[-1]], feeds)[0]
    actual = linked(linear.scores(prepared), linear.link)
    difference = np.abs(actual.reshape(expected.shape) - expected) / np.maximum(1.0, np.abs(expected))
    if not difference.max() <= CHECK_TOLERANCE:
        raise _refuse(
            model.path,
            f"its outputs are not the linear node's scores through the {linear.link} link "
            f"(relative difference {difference.max():.3g} on {CHECK_ROWS} rows): the graph does more after that node",
        )


def _transform(proto: ModelProto, prepared: str, width: int) -> bytes:
    """The graph's inputs -> `prepared` (the linear node's input): the nodes it needs, nothing after.

    Cut by hand: onnx.utils.Extractor needs shape information that inference does not give for the
    ONNX-ML nodes skl2onnx writes.
    """
    from onnx import TensorProto, helper

    needed, kept = {prepared}, []
    for node in reversed(proto.graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    graph = helper.make_graph(
        list(reversed(kept)),
        "feature_transform",
        list(proto.graph.input),
        [helper.make_tensor_value_info(prepared, TensorProto.FLOAT, [None, width])],
        [tensor for tensor in proto.graph.initializer if tensor.name in needed],
    )
    cut = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    # The client feeds the transform from the schema: it carries the model's `mlops.*` metadata too.
    cut.metadata_props.extend(proto.metadata_props)
    return cut.SerializeToString()


def extract(model: Model) -> LinearModel:
    """The linear model served from `model.path`, checked against the model; NotLinear if there is none."""
    import onnx

    proto = onnx.load(str(model.path))
    nodes = [node for node in proto.graph.node if node.op_type in LINEAR_OPS and node.domain == "ai.onnx.ml"]
    if len(nodes) != 1:
        kinds = sorted({node.op_type for node in proto.graph.node})
        raise _refuse(
            model.path,
            f"this file has {len(nodes)} LinearClassifier or LinearRegressor nodes, not one "
            f"(its operators: {', '.join(kinds)})",
        )
    (node,) = nodes
    weights, bias, link = _weights(model.path, node, model.classes)
    linear = LinearModel(weights, bias, link, _transform(proto, node.input[0], weights.shape[1]))
    _check(model, linear)
    return linear
