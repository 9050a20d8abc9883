"""The tabular family's stages in pipeline order: its own modules here, the core's gate and register."""

from __future__ import annotations

from ...stages import family_pipeline, own

PIPELINE = family_pipeline(
    "tabular",
    "check the input data with Great Expectations",
    own(
        "tabular",
        "tune",
        "search model.params with Ray Tune (tune.enabled), trials as child runs",
        opens_run=True,
        remote=True,
    ),
    own(
        "tabular", "train", "start the MLflow run (or continue tune's) and train the model", opens_run=True, remote=True
    ),
    own("tabular", "evaluate", "metrics, fairness audit and plots on the held-out rows"),
    own("tabular", "explain", "global feature importance and local explanations (SHAP) on held-out rows"),
)
STAGES = {stage.name: stage for stage in PIPELINE}
