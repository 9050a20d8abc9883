"""The trained policy as a logged MLflow model of tensors only, and read back without running anything in it.

Whoever can write to the tracking server's artifacts can change these files: the weights are read
with torch's `weights_only` unpickler (tensors and plain containers; any other global is refused)
into a module built from config.yaml, strictly (every name and shape must match).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import torch

from ...errors import UntrustedModel
from ..config import Reinforcement
from ..pure import policy

WEIGHTS = "policy.pt"


def log_policy(weights: dict[str, torch.Tensor]) -> str:
    """A registrable logged model holding the policy module's state dict, and no code or flavour to load it with."""
    logged = mlflow.initialize_logged_model(name="policy", model_type="rllib-state-dict")
    with tempfile.TemporaryDirectory() as folder:
        torch.save(weights, Path(folder) / WEIGHTS)
        described = mlflow.models.Model(
            run_id=logged.source_run_id, model_id=logged.model_id, model_uuid=logged.model_id
        )
        described.save(Path(folder) / "MLmodel")
        mlflow.MlflowClient().log_model_artifacts(logged.model_id, folder)
    return str(mlflow.finalize_logged_model(logged.model_id, "READY").model_uri)


def load_policy(uri: str, settings: Reinforcement) -> Any:
    """The RLlib inference module of the config, holding the weights logged at `uri`."""
    # `models:/<id>/<path>` reads <id> as a registered name: go through the logged model's location.
    location = mlflow.MlflowClient().get_logged_model(uri.removeprefix("models:/")).artifact_location
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=location))
    try:
        weights = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
        return policy.module(settings, weights)
    except Exception as error:  # missing, a refused global, not a torch file, or not this config's network
        raise UntrustedModel(
            f"model {uri}: {WEIGHTS} is not a state dict of plain tensors for the policy config.yaml's rl section "
            f"describes ({type(error).__name__}: {error}). Nothing in it was run. If you changed rl.hidden or the "
            "environment since training, train again; otherwise check who can write to the tracking server's artifacts."
        ) from error
