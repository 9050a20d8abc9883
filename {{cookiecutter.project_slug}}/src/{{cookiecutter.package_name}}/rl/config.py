"""The reinforcement-learning family's section of config.yaml: the environment and PPO's budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from .. import config as core
from ..config import Strict
from ..errors import UsageError


class Reinforcement(Strict):
    """The environment, what `validate` holds it to, and PPO's budget (RLlib: rl/pure/policy.py, rl/training/ppo.py)."""

    environment: str = Field(
        "CartPole-v1", description="a Gymnasium id, or `package.module:ClassName` for your own gymnasium.Env"
    )
    env_config: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the environment")
    # What `validate` checks the environment's spaces against: a changed environment fails before training.
    observation_size: int = Field(4, ge=1, description="length of the (flat, Box) observation")
    observation_low: list[float] | None = Field(None, description="declared lower bounds (None: not checked)")
    observation_high: list[float] | None = Field(None, description="declared upper bounds (None: not checked)")
    actions: int = Field(2, ge=2, description="size of the Discrete action space")
    seed: int = 42
    iterations: int = Field(4, ge=1, description="PPO training iterations (each samples train_batch_size steps)")
    train_batch_size: int = Field(1000, ge=32)
    minibatch_size: int = Field(250, ge=8)
    num_epochs: int = Field(6, ge=1)
    learning_rate: float = Field(0.0003, gt=0.0)
    hidden: list[int] = Field(default_factory=lambda: [32, 32], description="tanh layers of the policy network")
    evaluation_episodes: int = Field(10, ge=1, description="seeded greedy episodes `evaluate` runs")
    parity_observations: int = Field(256, ge=1, description="observations `export` compares RLlib and ONNX on")

    @model_validator(mode="after")
    def _bounds_fit(self) -> Reinforcement:
        for name in ("observation_low", "observation_high"):
            bounds = getattr(self, name)
            if bounds is not None and len(bounds) != self.observation_size:
                raise ValueError(f"{name} has {len(bounds)} values for observation_size {self.observation_size}")
        return self


class Config(core.Config):
    task: Literal["reinforcement"]
    rl: Reinforcement = Field(default_factory=lambda: Reinforcement.model_validate({}))


def overrides(raw: dict[str, Any], data: Path | None, target: str | None, init_from: str | None) -> dict[str, Any]:
    """A reinforcement-learning project reads no table and starts from no model: those options are errors."""
    if data is not None or target is not None:
        raise UsageError(
            "--data/--target: a reinforcement-learning project reads no table; "
            "its episodes come from the environment in config.yaml's rl.environment"
        )
    if init_from is not None:
        raise UsageError("--init-from: a reinforcement-learning project trains its policy from scratch")
    return raw
