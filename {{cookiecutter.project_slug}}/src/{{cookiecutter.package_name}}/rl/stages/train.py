"""train: start the run, train PPO with RLlib, log each iteration's returns, the checkpoint and the policy."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import mlflow

from ... import lineage, tracking
from ...stages.train import Trained, finish, open_run, record_origin
from ..config import Config
from ..dataio import store
from ..training import ppo

log = logging.getLogger(__name__)


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

    with open_run(config, client) as active:
        record_origin(config, "rllib")
        mlflow.log_params(
            {"task": config.task, "algorithm": "PPO"}
            | {
                f"rl.{key}": json.dumps(value) if isinstance(value, (dict, list)) else value
                for key, value in settings.model_dump(mode="json").items()
            }
        )

        with tempfile.TemporaryDirectory() as folder:
            checkpoint = Path(folder) / "checkpoint"
            weights = ppo.train(settings, record, checkpoint)
            # For resuming training where you trust the store; no stage loads it (rl/pure/policy.py).
            mlflow.log_artifacts(str(checkpoint), lineage.RL_CHECKPOINT_FOLDER)
        trained = finish(config, active.info, store.log_policy(weights), list(range(settings.actions)))
    log.info(
        "trained PPO on %s for %d iterations; mean episode return %s",
        settings.environment,
        settings.iterations,
        " -> ".join(f"{value:.1f}" for value in returns) or "not reported",
    )
    return trained
