"""The environment as config.yaml declares it: built by Gymnasium id or by import path, and every way its
spaces can differ from the declaration named (no training, no Ray: milliseconds)."""

from __future__ import annotations

import math
import sys
import types

import gymnasium as gym
import numpy as np
import pytest

from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.rl.config import Reinforcement
from {{ cookiecutter.package_name }}.rl.pure import environment

CARTPOLE_LOW = [-4.8, -math.inf, -0.41887903, -math.inf]
CARTPOLE_HIGH = [4.8, math.inf, 0.41887903, math.inf]


def settings(**changes) -> Reinforcement:
    declared = {"observation_low": CARTPOLE_LOW, "observation_high": CARTPOLE_HIGH} | changes
    return Reinforcement.model_validate(declared)


class GridWorld(gym.Env):
    """A user's environment of the wrong kind: a Discrete observation and a Box action."""

    observation_space = gym.spaces.Discrete(5)
    action_space = gym.spaces.Box(low=-1.0, high=1.0, shape=(2,))

    def __init__(self, config: dict) -> None:
        self.config = config


@pytest.fixture
def user_module(monkeypatch) -> str:
    """A module on the import path holding a gymnasium.Env subclass and a class that is not one."""
    module = types.ModuleType("user_envs")
    module.GridWorld = GridWorld  # type: ignore[attr-defined]
    module.NotAnEnv = dict  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "user_envs", module)
    return "user_envs"


def test_the_default_cartpole_matches_its_declaration():
    env = environment.make(settings())
    try:
        assert environment.space_problems(env, settings()) == []
    finally:
        env.close()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"observation_size": 3, "observation_low": None, "observation_high": None}, "observations have 4 components"),
        ({"actions": 3}, "the environment has 2 actions, rl.actions says 3"),
        ({"observation_low": [-4.0, -math.inf, -0.41887903, -math.inf]}, "rl.observation_low is [-4.0,"),
        ({"observation_high": [4.8, 1.0, 0.41887903, math.inf]}, "rl.observation_high is [4.8, 1.0,"),
    ],
)
def test_each_difference_from_the_declaration_is_named(changes, problem):
    declared = settings(**changes)
    env = environment.make(declared)
    try:
        problems = environment.space_problems(env, declared)
    finally:
        env.close()
    assert len(problems) == 1 and problem in problems[0], problems


def test_bounds_not_declared_are_not_checked():
    declared = settings(observation_low=None, observation_high=None)
    env = environment.make(declared)
    try:
        assert environment.space_problems(env, declared) == []
    finally:
        env.close()


def test_a_users_class_is_built_with_env_config_and_its_wrong_spaces_are_both_named(user_module):
    declared = settings(environment=f"{user_module}:GridWorld", env_config={"size": 5})
    assert environment.creator(declared) is GridWorld
    env = environment.make(declared)
    assert isinstance(env, GridWorld) and env.config == {"size": 5}
    problems = environment.space_problems(env, declared)
    assert len(problems) == 2, problems
    assert problems[0].startswith("the observation space is Discrete(5), not a flat Box")
    assert problems[1].startswith(f"the action space is {GridWorld.action_space}, not Discrete")


def test_a_module_that_cannot_be_imported_is_named_with_what_to_give():
    with pytest.raises(UsageError, match=r"cannot import 'no_such_module_here'.*package\.module:ClassName"):
        environment.creator(settings(environment="no_such_module_here:World"))


def test_a_class_that_is_not_an_environment_is_refused(user_module):
    with pytest.raises(UsageError, match="is not a gymnasium.Env subclass"):
        environment.creator(settings(environment=f"{user_module}:NotAnEnv"))


def test_an_unknown_gymnasium_id_is_a_usage_error():
    with pytest.raises(UsageError, match="Gymnasium cannot make 'NoSuchWorld-v0'"):
        environment.make(settings(environment="NoSuchWorld-v0"))


@pytest.mark.parametrize(
    ("declared", "actual", "equal"),
    [
        (math.inf, math.inf, True),
        (-math.inf, math.inf, False),
        (4.8, math.inf, False),
        (0.41887903, float(np.float32(0.41887903)), True),  # the space's float32 bound against the YAML's decimal
        (4.8, 4.9, False),
    ],
)
def test_bounds_compare_within_float32_rounding_and_infinities_exactly(declared, actual, equal):
    assert environment.same(declared, actual) is equal
