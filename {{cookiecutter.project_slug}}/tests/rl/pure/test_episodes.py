"""Seeded episodes of a fixed policy on CartPole: the same seeds give the same returns, and the observations
`export` compares on are the ones the policy visits, topped up with samples of the space (no Ray)."""

from __future__ import annotations

import numpy as np

from {{ cookiecutter.package_name }}.rl.config import Reinforcement
from {{ cookiecutter.package_name }}.rl.pure import episodes

SETTINGS = Reinforcement.model_validate({})


def always_left(observations: np.ndarray) -> np.ndarray:
    return np.zeros(len(observations), dtype=np.int64)


def lean_against(observations: np.ndarray) -> np.ndarray:
    """Push the cart toward the side the pole leans to: a policy that lasts longer than always_left."""
    return (observations[:, 2] > 0).astype(np.int64)


def test_a_return_is_the_number_of_steps_and_the_record_holds_each_observation():
    visited: list[np.ndarray] = []
    total = episodes.play(SETTINGS, always_left, seed=7, record=visited)
    assert total == len(visited)  # CartPole pays 1 per step
    assert 5 <= total < 30  # always pushing one way drops the pole within a few dozen steps
    assert all(observation.shape == (4,) and observation.dtype == np.float32 for observation in visited)


def test_the_same_seeds_give_the_same_returns_and_seeds_are_consecutive():
    first = episodes.returns(SETTINGS, lean_against, episodes=3, first_seed=11)
    assert first == episodes.returns(SETTINGS, lean_against, episodes=3, first_seed=11)
    assert first == [episodes.play(SETTINGS, lean_against, seed) for seed in (11, 12, 13)]
    assert np.mean(first) > np.mean(episodes.returns(SETTINGS, always_left, episodes=3, first_seed=11))


def test_observations_are_the_visited_ones_then_samples_of_the_space():
    visited: list[np.ndarray] = []
    steps = int(episodes.play(SETTINGS, always_left, seed=3, record=visited))
    sampled = episodes.observations(SETTINGS, always_left, count=steps + 20, seed=3)
    assert sampled.shape == (steps + 20, 4) and sampled.dtype == np.float32
    assert np.array_equal(sampled[:steps], np.stack(visited))
    # Samples of CartPole's Box: unbounded velocities, so some lie far from anything an episode visits.
    assert np.abs(sampled[steps:, 1]).max() > np.abs(sampled[:steps, 1]).max()
    assert np.array_equal(sampled, episodes.observations(SETTINGS, always_left, count=steps + 20, seed=3))


def test_fewer_observations_than_an_episode_visits_are_its_first_ones():
    visited: list[np.ndarray] = []
    episodes.play(SETTINGS, always_left, seed=5, record=visited)
    assert np.array_equal(episodes.observations(SETTINGS, always_left, count=3, seed=5), np.stack(visited[:3]))
