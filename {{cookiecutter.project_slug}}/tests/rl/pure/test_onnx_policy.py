"""The policy network as an ONNX graph, built from known weights: onnxruntime's actions and probabilities are
the network's own (tanh layers, softmax), and the file describes itself as the serving contract says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.rl.pure import onnx_policy
from {{ cookiecutter.package_name }}.serving import contract


def random_layers(sizes: list[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight [out, in], bias [out]) per layer, as torch.nn.Linear holds them."""
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(out, inp)).astype(np.float32), rng.normal(size=out).astype(np.float32))
        for inp, out in zip(sizes, sizes[1:], strict=False)
    ]


def forward(layers: list[tuple[np.ndarray, np.ndarray]], observations: np.ndarray) -> np.ndarray:
    """The logits in numpy: tanh between the linear layers, none after the last (RLlib's fcnet)."""
    current = observations.astype(np.float64)
    for index, (weight, bias) in enumerate(layers):
        current = current @ weight.T.astype(np.float64) + bias
        if index < len(layers) - 1:
            current = np.tanh(current)
    return current


def test_the_schema_names_one_number_input_per_component_and_the_actions_as_classes():
    described = onnx_policy.schema(3, 4, "CartPole-v1")
    assert [feature["name"] for feature in described["features"]] == ["obs_0", "obs_1", "obs_2"]
    assert {feature["type"] for feature in described["features"]} == {contract.NUMBER}
    assert described["classes"] == [0, 1, 2, 3]
    assert (described["task"], described["environment"]) == ("reinforcement", "CartPole-v1")


@pytest.mark.parametrize("sizes", [[4, 2], [4, 8, 2], [5, 16, 8, 3]], ids=["linear", "one-hidden", "two-hidden"])
def test_onnxruntime_gives_the_networks_greedy_actions_and_softmax(sizes):
    layers = random_layers(sizes)
    model = onnx_policy.build(layers, onnx_policy.schema(sizes[0], sizes[-1], "test"), {"run_id": "r1"})
    observations = np.random.default_rng(1).normal(size=(64, sizes[0])).astype(np.float32)
    actions, probabilities = onnx_policy.greedy(model, observations)
    logits = forward(layers, observations)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert actions.dtype == np.int64 and np.array_equal(actions, logits.argmax(axis=1))
    assert probabilities.shape == (64, sizes[-1])
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_the_file_carries_its_schema_and_lineage_and_the_contracts_outputs():
    described = onnx_policy.schema(4, 2, "CartPole-v1")
    model = onnx_policy.build(random_layers([4, 2]), described, {"run_id": "r1", "git_sha": "abc"})
    entries = {entry.key: entry.value for entry in model.metadata_props}
    assert json.loads(entries[contract.SCHEMA]) == described
    assert entries[contract.RUN_ID] == "r1" and entries[f"{contract.PREFIX}git_sha"] == "abc"
    assert [output.name for output in model.graph.output] == list(contract.CLASSIFICATION_OUTPUTS)
    assert [graph_input.name for graph_input in model.graph.input] == onnx_policy.feature_names(4)
