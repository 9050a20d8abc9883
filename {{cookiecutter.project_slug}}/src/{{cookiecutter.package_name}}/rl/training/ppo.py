"""PPO's training run through RLlib: a Ray runtime for this process, the policy's weights out, RLlib's
checkpoint written to disk (no stage loads it: README, "Reinforcement learning")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..config import Reinforcement
from ..pure.policy import ppo_config


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
