"""The reinforcement-learning family's stages in pipeline order: its own modules here, the core's gate and register."""

from __future__ import annotations

from ...stages import family_pipeline, own

PIPELINE = family_pipeline(
    "rl",
    "check the environment's spaces against config.yaml",
    own("rl", "train", "start the MLflow run and train the PPO policy with RLlib", opens_run=True),
    own("rl", "evaluate", "mean, worst and best return of seeded greedy episodes"),
)
