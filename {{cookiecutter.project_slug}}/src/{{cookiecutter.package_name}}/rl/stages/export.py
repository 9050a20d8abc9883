"""export: the policy network to ONNX, held to RLlib's greedy actions on sampled observations, then written."""

from __future__ import annotations

import numpy as np

from ... import lineage
from ...stages.export import Exported, Parity, conclude
from ..config import Config
from ..pure import episodes, onnx_policy, policy
from .context import attach


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def run(config: Config, run_id: str | None = None) -> Exported:
    context = attach(config, run_id)
    settings = config.rl
    rl_module = context.policy(config)
    # Observations the policy visits, and others from its observation space: where it is used, and beyond.
    observations = episodes.observations(
        settings, lambda rows: policy.greedy(rl_module, rows), settings.parity_observations, settings.seed
    )
    native_logits = policy.logits(rl_module, observations)
    tags = context.run.data.tags
    model = onnx_policy.build(
        policy.layers(rl_module),
        onnx_policy.schema(settings.observation_size, settings.actions, settings.environment),
        {
            "model_name": config.tracking.model_name,
            "run_id": context.run_id,
            "git_sha": tags.get(lineage.GIT_SHA, "unknown"),
        },
    )
    actions, probabilities = onnx_policy.greedy(model, observations)
    mismatched = int(np.sum(actions != np.argmax(native_logits, axis=1)))
    worst = float(np.abs(probabilities - softmax(native_logits)).max())
    problems = [f"{mismatched} greedy actions differ from RLlib's"] if mismatched else []
    if worst > config.export.parity_tolerance:
        problems.append(
            f"action probabilities differ by up to {worst:.3g} (tolerance {config.export.parity_tolerance:g})"
        )

    # The action mismatches are logged (a metric) whatever the verdict; the probabilities' gap is the max abs diff.
    checked = Parity(
        f"{len(observations)} observations", worst, problems, {"export.parity_action_mismatches": float(mismatched)}
    )
    return conclude(config, context.run_id, model, checked)
