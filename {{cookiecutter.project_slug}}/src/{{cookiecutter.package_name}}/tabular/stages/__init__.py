"""The tabular family's stages in pipeline order: its own modules here, the core's gate and register."""

from __future__ import annotations

from ...stages import GATE, REGISTER, Stage

PIPELINE = (
    Stage("validate", "check the input data with Great Expectations", "tabular.stages.validate", attaches=False),
    Stage(
        "tune",
        "search model.params with Ray Tune (tune.enabled), trials as child runs",
        "tabular.stages.tune",
        attaches=False,
        needs="validate",
        remote=True,
    ),
    Stage(
        "train",
        "start the MLflow run (or continue tune's) and train the model",
        "tabular.stages.train",
        attaches=False,
        needs="validate",
        remote=True,
    ),
    Stage("evaluate", "metrics, fairness audit and plots on the held-out rows", "tabular.stages.evaluate"),
    Stage(
        "explain",
        "global feature importance and local explanations (SHAP) on held-out rows",
        "tabular.stages.explain",
    ),
    GATE,
    Stage("export", "convert to ONNX and check onnxruntime parity", "tabular.stages.export"),
    REGISTER,
)
STAGES = {stage.name: stage for stage in PIPELINE}
