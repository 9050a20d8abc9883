"""`model-card`: write MODEL_CARD.md for a run or a registered version, read from the tracking store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .. import config as configuration
from .. import lineage
from . import answers
from .facts import Version

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run-id", help="a run (default: $MLFLOW_RUN_ID, else outputs/run.json)")
    which.add_argument("--model", help="a registered version: models:/<name>@<alias> or models:/<name>/<version>")
    which.add_argument("--version", help="a version of this project's model (tracking.model_name)")
    parser.add_argument(
        "--answers",
        type=Path,
        help=f"the team's answers (default: those logged with the run, else {answers.FILE} beside the config)",
    )
    parser.add_argument("--output", type=Path, default=Path("outputs") / lineage.MODEL_CARD_FILE)


def run(args: argparse.Namespace) -> None:
    from .. import tracking
    from .publish import make, resolve, version_of

    config = configuration.load(args.config)
    client = tracking.connect(config)
    version: Version | None
    if args.model or args.version:
        model = args.model or f"models:/{config.tracking.model_name}/{args.version}"
        run_id, version = resolve(client, model)
    else:
        ref = tracking.find_run(config, args.run_id)
        found = tracking.check_run(client, ref)
        run_id = found.info.run_id
        # A registered run's card names its version.
        number = found.data.tags.get(lineage.MODEL_VERSION)
        version = version_of(client, config.tracking.model_name, number) if number else None
    # Answers given on the command line win; else those the run logged at `register`, else the checkout's.
    card = make(client, run_id, version, args.answers or config.root / answers.FILE, prefer_run=args.answers is None)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(card)
    log.info("wrote the model card of run %s to %s", run_id, args.output)


COMMANDS = {"model-card": ("write MODEL_CARD.md for a run or registered version", add_arguments, run)}
