"""The configured Gymnasium environment, built by id or by import path, and its spaces checked against the config."""

from __future__ import annotations

import importlib
import math
from typing import Any

import gymnasium as gym
import numpy as np

from ...errors import UsageError
from ..config import Reinforcement


def creator(settings: Reinforcement) -> Any:
    """What RLlib and `make` build the environment from: a registered Gymnasium id, or the user's class."""
    if ":" not in settings.environment:
        return settings.environment
    module_name, _, class_name = settings.environment.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise UsageError(
            f"rl.environment: cannot import {module_name!r} ({error}); give `package.module:ClassName` "
            "of a module on the Python path, or a Gymnasium id such as CartPole-v1"
        ) from error
    kind = getattr(module, class_name, None)
    if not (isinstance(kind, type) and issubclass(kind, gym.Env)):
        raise UsageError(f"rl.environment: {settings.environment!r} is not a gymnasium.Env subclass")
    return kind


def make(settings: Reinforcement) -> gym.Env:
    built = creator(settings)
    try:
        return gym.make(built, **settings.env_config) if isinstance(built, str) else built(settings.env_config)
    except gym.error.Error as error:
        raise UsageError(f"rl.environment: Gymnasium cannot make {settings.environment!r}: {error}") from error


def space_problems(env: gym.Env, settings: Reinforcement) -> list[str]:
    """What in the environment's spaces differs from what config.yaml declares (empty: they agree)."""
    problems = []
    observations, actions = env.observation_space, env.action_space
    if not isinstance(observations, gym.spaces.Box) or len(observations.shape) != 1:
        problems.append(f"the observation space is {observations}, not a flat Box: the policy takes a vector")
    elif observations.shape[0] != settings.observation_size:
        problems.append(
            f"observations have {observations.shape[0]} components, "
            f"rl.observation_size says {settings.observation_size}"
        )
    else:
        for name, declared, actual in (
            ("observation_low", settings.observation_low, observations.low),
            ("observation_high", settings.observation_high, observations.high),
        ):
            if declared is not None and not all(same(d, float(a)) for d, a in zip(declared, actual, strict=True)):
                problems.append(f"rl.{name} is {declared}, the environment's is {np.asarray(actual).tolist()}")
    if not isinstance(actions, gym.spaces.Discrete):
        problems.append(f"the action space is {actions}, not Discrete: this project's policy picks one of n actions")
    elif int(actions.n) != settings.actions:
        problems.append(f"the environment has {int(actions.n)} actions, rl.actions says {settings.actions}")
    return problems


def same(declared: float, actual: float) -> bool:
    if math.isinf(declared) or math.isinf(actual):
        return declared == actual
    return math.isclose(declared, actual, rel_tol=1e-6, abs_tol=1e-6)
