"""The policy network as an ONNX graph that follows the serving contract (serving/contract.py).

Inputs: one [N, 1] float input per observation component (obs_0, obs_1, ...), as the server feeds
every feature. Outputs: `label`, the greedy action [N] (int64), and `probabilities`, the policy's
softmax over the actions [N, actions]. Built node by node from the linear layers' weights (tanh
between them, as RLlib's fcnet), so the graph holds only what the policy computes.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from ...serving import contract

OPSET = 17


def feature_names(size: int) -> list[str]:
    return [f"obs_{index}" for index in range(size)]


def schema(size: int, actions: int, environment: str) -> dict:
    """The `mlops.schema` the server reads: observation components as number features, actions as classes."""
    return {
        "task": "reinforcement",
        "target": "action",
        "environment": environment,
        "features": [{"name": name, "input": name, "type": contract.NUMBER} for name in feature_names(size)],
        "classes": list(range(actions)),
    }


def build(layers: list[tuple[np.ndarray, np.ndarray]], described: dict, info: dict[str, str]) -> onnx.ModelProto:
    names = [feature["input"] for feature in described["features"]]
    nodes = [helper.make_node("Concat", names, ["observation"], axis=1)]
    initializers = []
    current = "observation"
    for index, (weight, bias) in enumerate(layers):
        initializers += [
            numpy_helper.from_array(weight.astype(np.float32), f"w{index}"),
            numpy_helper.from_array(bias.astype(np.float32), f"b{index}"),
        ]
        last = index == len(layers) - 1
        linear = "logits" if last else f"linear{index}"
        nodes.append(helper.make_node("Gemm", [current, f"w{index}", f"b{index}"], [linear], transB=1))
        if not last:
            nodes.append(helper.make_node("Tanh", [linear], [f"hidden{index}"]))
            current = f"hidden{index}"
    nodes += [
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    actions = layers[-1][0].shape[0]
    graph = helper.make_graph(
        nodes,
        "policy",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 1]) for name in names],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", actions]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9  # what onnxruntime 1.31 reads; onnx's newest default may be ahead of it
    for key, value in contract.metadata(described, info).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    return model


def greedy(model: onnx.ModelProto, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's actions and probabilities for (n, size) observations, fed as the server feeds them."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {
        f"obs_{index}": observations[:, index : index + 1].astype(np.float32) for index in range(observations.shape[1])
    }
    label, probabilities = session.run(list(contract.CLASSIFICATION_OUTPUTS), feeds)
    return label, probabilities
