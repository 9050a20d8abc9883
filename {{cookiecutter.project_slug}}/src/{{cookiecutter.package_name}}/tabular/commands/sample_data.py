"""`sample-data`: write the bundled sample data again (seeded, so the same files)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=Path("data"))


def run(args: argparse.Namespace) -> None:
    from ..dataio.sample_data import write  # pandas: imported when the command runs

    for path in write(args.output):
        log.info("wrote %s", path)


COMMANDS = {"sample-data": ("regenerate the bundled sample data (seeded)", add_arguments, run)}
