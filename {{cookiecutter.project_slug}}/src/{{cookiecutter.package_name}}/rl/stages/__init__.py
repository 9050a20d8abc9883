"""The reinforcement-learning family's stages in pipeline order: its own modules here, the core's gate and register."""

from __future__ import annotations

from ...stages import GATE, REGISTER, Stage

PIPELINE = (
    Stage("validate", "check the environment's spaces against config.yaml", "rl.stages.validate", attaches=False),
    Stage(
        "train",
        "start the MLflow run and train the PPO policy with RLlib",
        "rl.stages.train",
        attaches=False,
        needs="validate",
    ),
    Stage("evaluate", "mean, worst and best return of seeded greedy episodes", "rl.stages.evaluate"),
    GATE,
    Stage("export", "convert to ONNX and check onnxruntime parity", "rl.stages.export"),
    REGISTER,
)
STAGES = {stage.name: stage for stage in PIPELINE}
