"""Seeded episodes of a greedy policy: what `evaluate` scores and `export` samples observations from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import Reinforcement
from . import environment

Act = Callable[[np.ndarray], np.ndarray]  # observations (n, size) -> actions (n,)


def play(settings: Reinforcement, act: Act, seed: int, record: list[np.ndarray] | None = None) -> float:
    """One episode from `reset(seed=seed)` to its end (terminated or truncated); its return."""
    env = environment.make(settings)
    try:
        observation, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            if record is not None:
                record.append(np.asarray(observation, dtype=np.float32))
            action = int(act(np.asarray(observation, dtype=np.float32).reshape(1, -1))[0])
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        return total
    finally:
        env.close()


def returns(settings: Reinforcement, act: Act, episodes: int, first_seed: int) -> list[float]:
    """Each episode seeded `first_seed + i`: the same config gives the same episodes."""
    return [play(settings, act, first_seed + index) for index in range(episodes)]


def observations(settings: Reinforcement, act: Act, count: int, seed: int) -> np.ndarray:
    """`count` observations: those the policy itself visits, topped up with samples of the observation space."""
    visited: list[np.ndarray] = []
    play(settings, act, seed, record=visited)
    env = environment.make(settings)
    try:
        env.observation_space.seed(seed)
        while len(visited) < count:
            visited.append(np.asarray(env.observation_space.sample(), dtype=np.float32))
    finally:
        env.close()
    return np.stack(visited[:count])
