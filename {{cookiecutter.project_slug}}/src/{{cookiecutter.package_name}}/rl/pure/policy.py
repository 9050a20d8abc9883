"""PPO's settings for RLlib (new API stack), and the trained policy as tensors that can be stored and trusted.

What leaves training is the RLlib module's state dict: tensors only, read back with torch's
`weights_only` unpickler into a module built from the config (`module`), never RLlib's pickled
checkpoint. The checkpoint is logged too, for resuming training on a machine you trust, but no
stage loads it (README, "Reinforcement learning").
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..config import Reinforcement
from . import environment

# RLlib probes for TensorFlow when imported; this project trains with torch only.
os.environ.setdefault("RLLIB_TEST_NO_TF_IMPORT", "1")


def ppo_config(settings: Reinforcement) -> Any:
    from ray.rllib.algorithms.ppo import PPOConfig

    return (
        PPOConfig()
        .environment(environment.creator(settings), env_config=settings.env_config)
        .framework("torch")
        # Sampling in the driver: one process, reproducible with the seed, and no idle workers on a CI runner.
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1)
        .learners(num_learners=0)
        .training(
            train_batch_size_per_learner=settings.train_batch_size,
            minibatch_size=settings.minibatch_size,
            num_epochs=settings.num_epochs,
            lr=settings.learning_rate,
        )
        .rl_module(model_config={"fcnet_hiddens": list(settings.hidden), "fcnet_activation": "tanh"})
        .debugging(seed=settings.seed)
    )


def module(settings: Reinforcement, weights: dict[str, torch.Tensor]) -> Any:
    """The RLlib inference module the config describes, holding `weights` (strict: names and shapes must match)."""
    env = environment.make(settings)
    try:
        spec = ppo_config(settings).get_rl_module_spec(env=env, inference_only=True)
    finally:
        env.close()
    built = spec.build()
    built.load_state_dict(weights, strict=True)
    return built.eval()


def logits(rl_module: Any, observations: np.ndarray) -> np.ndarray:
    """The policy's action logits, computed by RLlib itself (forward_inference)."""
    from ray.rllib.core.columns import Columns

    with torch.no_grad():
        output = rl_module.forward_inference({Columns.OBS: torch.as_tensor(observations, dtype=torch.float32)})
    return output[Columns.ACTION_DIST_INPUTS].numpy()


def greedy(rl_module: Any, observations: np.ndarray) -> np.ndarray:
    return np.argmax(logits(rl_module, observations), axis=1)


def layers(rl_module: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each linear layer from observation to logits: the actor encoder's, then the head's."""
    found = [
        (layer.weight.detach().numpy(), layer.bias.detach().numpy())
        for part in (rl_module.encoder.actor_encoder, rl_module.pi)
        for layer in part.modules()
        if isinstance(layer, torch.nn.Linear)
    ]
    if not found:
        raise TypeError(f"{type(rl_module).__name__}: no linear layers found in its actor encoder and policy head")
    return found
