"""The reinforcement-learning family: a Gymnasium environment in, a PPO policy (RLlib) out."""

from __future__ import annotations

from ..family import Family
from .config import Config, overrides
from .stages import PIPELINE

FAMILY = Family(
    name="rl",
    config=Config,
    pipeline=PIPELINE,
    overrides=overrides,
    noisy_loggers=("ray",),
)
