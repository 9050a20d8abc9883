"""What every stage after train starts from, in a reinforcement-learning project: the attached run and its policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...stages.context import AttachedRun, attach_run
from ..config import Config
from ..dataio import store


@dataclass(frozen=True)
class RunContext(AttachedRun):
    def policy(self, config: Config) -> Any:
        """The RLlib module, from the run's weights (tensors only; the pickled checkpoint is never loaded)."""
        return store.load_policy(self.model_uri, config.rl)


def attach(config: Config, run_id: str | None) -> RunContext:
    attached = attach_run(config, run_id, trained="policy")
    return RunContext(client=attached.client, run=attached.run)
