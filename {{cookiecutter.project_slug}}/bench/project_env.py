"""The environment a benchmark runs the project's commands in, as child processes: this project's src first
on PYTHONPATH, no telemetry, and none of the caller's tracking server or CI variables (`dropped`), so each
benchmark's runs land in its own temporary store. A helper of the scripts beside it, not a benchmark."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
# A shell's tracking server, registry and run, and CI's ref and commit: a benchmark records none of its runs there.
DROPPED = ("MLFLOW_TRACKING", "MLFLOW_REGISTRY", "MLFLOW_RUN_ID", "GITHUB_")


def child_env(threads: int | None = None, dropped: tuple[str, ...] = DROPPED) -> dict[str, str]:
    """os.environ without the variables starting with `dropped`; `threads` sets OMP_NUM_THREADS."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT / "src"), env.get("PYTHONPATH")])),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """--threads, which the benchmarks that run the stages pass to child_env."""
    parser.add_argument(
        "--threads",
        type=int,
        help="OMP_NUM_THREADS for the stages (default: the libraries' own choice, one per core); "
        "on a machine whose cores are busy with other work, 1 trains several times faster",
    )
