"""PPO through RLlib (new API stack), and the trained policy as tensors that can be stored and trusted.

What leaves training is the RLlib module's state dict: tensors only, read back with torch's
`weights_only` unpickler into a module built from the config (`module`), never RLlib's pickled
checkpoint. The checkpoint is logged too, for resuming training on a machine you trust, but no
stage loads it (README, "Reinforcement learning").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import environment
from .config import Reinforcement

log = logging.getLogger(__name__)
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


@contextmanager
def local_ray() -> Iterator[None]:
    """A Ray runtime for this process only (one CPU, no dashboard), shut down however training ends."""
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def train(
    settings: Reinforcement, on_iteration: Callable[[int, dict[str, float]], None], checkpoint: Path
) -> dict[str, torch.Tensor]:
    """PPO for `settings.iterations` iterations; returns the policy's weights and saves the checkpoint."""
    with local_ray():
        algorithm = ppo_config(settings).build_algo()
        try:
            for iteration in range(settings.iterations):
                result = algorithm.train()
                runners = result.get("env_runners", {})
                scores = {
                    name: float(runners[key])
                    for name, key in (
                        ("episode_return_mean", "episode_return_mean"),
                        ("episode_return_min", "episode_return_min"),
                        ("episode_return_max", "episode_return_max"),
                        ("episode_len_mean", "episode_len_mean"),
                    )
                    if runners.get(key) is not None and np.isfinite(runners[key])
                }
                on_iteration(iteration, scores)
            algorithm.save_to_path(str(checkpoint))
            weights = algorithm.get_module().state_dict()
        finally:
            algorithm.stop()
    return {name: value.detach().clone() for name, value in weights.items()}


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
