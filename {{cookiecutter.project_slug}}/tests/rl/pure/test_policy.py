"""The policy module as RLlib builds it, untrained (no Ray runtime, no PPO iteration): the weights `store`
keeps rebuild it strictly, and the layers `export` reads compute RLlib's own logits (what the ONNX graph
is held to)."""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.rl.config import Reinforcement
from {{ cookiecutter.package_name }}.rl.pure import environment, episodes, onnx_policy, policy

SETTINGS = Reinforcement.model_validate({"hidden": [8, 8]})


@pytest.fixture(scope="module")
def weights() -> dict:
    """A fresh module's state dict: what training hands to the store, before any learning."""
    env = environment.make(SETTINGS)
    try:
        spec = policy.ppo_config(SETTINGS).get_rl_module_spec(env=env, inference_only=True)
    finally:
        env.close()
    return {name: value.detach().clone() for name, value in spec.build().state_dict().items()}


@pytest.fixture(scope="module")
def observations() -> np.ndarray:
    return episodes.observations(SETTINGS, lambda rows: np.zeros(len(rows), dtype=np.int64), 32, seed=1)


def test_the_layers_compute_rllibs_logits_and_greedy_takes_their_argmax(weights, observations):
    module = policy.module(SETTINGS, weights)
    layers = policy.layers(module)
    assert [weight.shape for weight, _ in layers] == [(8, 4), (8, 8), (2, 8)]
    current = observations.astype(np.float64)
    for index, (weight, bias) in enumerate(layers):
        current = current @ weight.T + bias
        current = np.tanh(current) if index < len(layers) - 1 else current
    logits = policy.logits(module, observations)
    np.testing.assert_allclose(logits, current, atol=1e-5)
    assert np.array_equal(policy.greedy(module, observations), logits.argmax(axis=1))


def test_the_onnx_graph_of_the_module_picks_rllibs_actions(weights, observations):
    module = policy.module(SETTINGS, weights)
    model = onnx_policy.build(policy.layers(module), onnx_policy.schema(4, 2, SETTINGS.environment), {})
    actions, _ = onnx_policy.greedy(model, observations)
    assert np.array_equal(actions, policy.greedy(module, observations))


def test_weights_of_another_network_are_refused(weights):
    wider = Reinforcement.model_validate({"hidden": [16, 8]})
    with pytest.raises(RuntimeError, match="size mismatch"):
        policy.module(wider, weights)
