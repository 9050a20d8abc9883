"""validate: the environment's observation and action spaces against what config.yaml declares, before training."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ... import lineage
from ...errors import CheckFailed
from ...stages import StageResult
from ..config import Config
from ..pure import environment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validated(StageResult):
    path: Path  # the result, saved for train to log with the run


def run(config: Config, run_id: str | None = None) -> Validated:
    """`run_id` is not used: validation comes before there is a run."""
    env = environment.make(config.rl)
    try:
        problems = environment.space_problems(env, config.rl)
        spaces = {"observation_space": str(env.observation_space), "action_space": str(env.action_space)}
    finally:
        env.close()
    result = {
        "success": not problems,
        "environment": config.rl.environment,
        **spaces,
        "problems": problems,
        "settings": config.rl.model_dump(mode="json"),
    }
    config.outputs.mkdir(parents=True, exist_ok=True)
    saved = config.outputs / lineage.VALIDATION_FILE
    saved.write_text(json.dumps(result, indent=2) + "\n")
    if problems:
        raise CheckFailed(
            f"{config.rl.environment}: the environment does not match config.yaml's rl section: "
            f"{'; '.join(problems)}. Fix the declaration (or the environment); nothing was trained."
        )
    log.info("%s: %s, %s", config.rl.environment, spaces["observation_space"], spaces["action_space"])
    return Validated(run_id=None, path=saved)


def current(config: Config) -> Validated | None:
    """The saved result, when it is a pass for exactly the rl settings in use now."""
    saved = config.outputs / lineage.VALIDATION_FILE
    if not saved.is_file():
        return None
    result = json.loads(saved.read_text())
    if result.get("success") and result.get("settings") == config.rl.model_dump(mode="json"):
        return Validated(run_id=None, path=saved)
    return None
