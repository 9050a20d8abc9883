"""train: start the run, train PPO with RLlib, log each iteration's returns, the checkpoint and the policy."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow

from ... import lineage, tracking
from ...stages import StageResult
from ..config import Config
from ..dataio import store
from ..training import ppo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trained(StageResult):
    run_id: str
    model_uri: str


def run(config: Config, run_id: str | None = None) -> Trained:
    """Starts a new run: `run_id` is not used. Runs after `validate` passed on these settings (PIPELINE)."""
    client = tracking.connect(config)
    settings = config.rl
    returns: list[float] = []

    def record(iteration: int, scores: dict[str, float]) -> None:
        mlflow.log_metrics({f"train.{name}": value for name, value in scores.items()}, step=iteration)
        if "episode_return_mean" in scores:
            returns.append(scores["episode_return_mean"])
        log.info("iteration %d: %s", iteration, ", ".join(f"{k}={v:.1f}" for k, v in scores.items()))

    with mlflow.start_run(experiment_id=tracking.experiment_id(config, client)) as active:
        run_id = active.info.run_id
        log.info("run %s started in %s", run_id, mlflow.get_tracking_uri())
        mlflow.set_tags(
            {
                lineage.GIT_SHA: lineage.git_sha(config.root),
                lineage.SOURCE_REF: lineage.source_ref(),
                lineage.FRAMEWORK: "rllib",
                lineage.TASK: config.task,
            }
        )
        mlflow.log_params(
            {"task": config.task, "algorithm": "PPO"}
            | {
                f"rl.{key}": json.dumps(value) if isinstance(value, (dict, list)) else value
                for key, value in settings.model_dump(mode="json").items()
            }
        )
        mlflow.log_artifact(str(config.outputs / lineage.VALIDATION_FILE), lineage.VALIDATION_FOLDER)
        mlflow.set_tag(lineage.stage_tag("validate"), lineage.DONE)

        with tempfile.TemporaryDirectory() as folder:
            checkpoint = Path(folder) / "checkpoint"
            weights = ppo.train(settings, record, checkpoint)
            # For resuming training where you trust the store; no stage loads it (rl/pure/policy.py).
            mlflow.log_artifacts(str(checkpoint), lineage.RL_CHECKPOINT_FOLDER)
        model_uri = store.log_policy(weights)
        mlflow.set_tags(
            {lineage.MODEL_URI: model_uri, lineage.MODEL_CLASSES: json.dumps(list(range(settings.actions)))}
        )
        mlflow.set_tag(lineage.stage_tag("train"), lineage.DONE)
        # Only a finished run becomes the one later stages attach to.
        lineage.RunRecord(run_id, active.info.experiment_id, tracking.tracking_uri(config)).save(config.outputs)
    log.info(
        "trained PPO on %s for %d iterations; mean episode return %s",
        settings.environment,
        settings.iterations,
        " -> ".join(f"{value:.1f}" for value in returns) or "not reported",
    )
    return Trained(run_id=run_id, model_uri=model_uri)
