"""evaluate: seeded episodes of the greedy policy; their mean, worst and best returns are what gate judges."""

from __future__ import annotations

import logging

import mlflow
import numpy as np

from ... import lineage
from ...stages.evaluate import Evaluated, record
from ..config import Config
from ..pure import episodes, policy
from .context import attach

log = logging.getLogger(__name__)
# Evaluation episodes start from seeds training's sampling does not use.
SEED_OFFSET = 10_000


def run(config: Config, run_id: str | None = None) -> Evaluated:
    context = attach(config, run_id)
    rl_module = context.policy(config)
    first_seed = config.rl.seed + SEED_OFFSET
    returns = episodes.returns(
        config.rl,
        lambda observations: policy.greedy(rl_module, observations),
        config.rl.evaluation_episodes,
        first_seed,
    )
    values = np.asarray(returns)
    scores = {
        "evaluate.return_mean": float(values.mean()),
        "evaluate.return_min": float(values.min()),
        "evaluate.return_max": float(values.max()),
        "evaluate.return_std": float(values.std()),
        "evaluate.episodes": float(len(returns)),
    }
    with mlflow.start_run(run_id=context.run_id):
        mlflow.log_dict({"first_seed": first_seed, "returns": returns, "policy": "greedy"}, lineage.EPISODES_ARTIFACT)
        evaluated = record(config, context.run_id, scores)
    log.info(
        "evaluated %d greedy episodes of %s: %s",
        len(returns),
        config.rl.environment,
        ", ".join(f"{name}={value:.1f}" for name, value in scores.items()),
    )
    return evaluated
