"""`monitor`: a window of the prediction log against the training run of the model that logged it.

window.py reads the window, reference.py what the training run recorded, drift.py and quality.py
measure, report.py writes; judge.py puts them together. The heavy imports (pandas, MLflow, the
metrics) wait until the command runs: the CLI builds its parser without them.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .... import lineage
from ....errors import CheckFailed, UsageError
from ....serving import prediction_log
from ... import config as configuration

log = logging.getLogger(__name__)


class NoVerdict(CheckFailed):
    """Too few logged rows, or too few trusted labels, in the window to say anything: not a pass."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml")
    parser.add_argument("--last", help="the window: the last 30m, 12h, 7d (default), 2w")
    parser.add_argument("--since", help="the window's start, ISO date or time (UTC unless it says otherwise)")
    parser.add_argument("--until", help="the window's end (default: now)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(prediction_log.DATABASE_URL_ENV),
        help=f"the prediction log, postgresql://... (default: ${prediction_log.DATABASE_URL_ENV})",
    )


def run(args: argparse.Namespace) -> None:
    from .... import tracking
    from . import report, window
    from .judge import judge, record

    config = configuration.load(args.config)
    span = window.parse(args.last, args.since, args.until)
    if not args.database_url:
        raise UsageError(
            f"no prediction log: set {prediction_log.DATABASE_URL_ENV} or pass --database-url postgresql://..."
        )
    rows = window.read(args.database_url, config.tracking.model_name, span)
    log.info("%d logged rows of %s from %s", len(rows), config.tracking.model_name, span.describe())
    outcome, observed = judge(config, span, rows)
    markdown = report.render(outcome)
    run_id = record(config, outcome, markdown, observed)
    as_json, _ = report.publish(outcome, markdown, config.outputs)
    print(markdown)
    log.info("monitor run %s recorded in %s", run_id, tracking.tracking_uri(config))
    if outcome.status == lineage.TOO_FEW_ROWS:
        raise NoVerdict(
            f"no verdict: {outcome.rows} logged rows of {outcome.model_name} from {span.describe()}, fewer than "
            f"monitor.min_rows = {outcome.min_rows}. Report: {as_json}"
        )
    if outcome.status == lineage.UNTRUSTED_LABELS:
        raise NoVerdict(f"no verdict: {'; '.join(outcome.reasons)}. Report: {as_json}")
    if outcome.status == lineage.FAILED:
        raise CheckFailed(f"monitor failed: {'; '.join(outcome.reasons)}. Report: {as_json}")
    if outcome.labelled_rows < outcome.min_labelled_rows:
        log.info(
            "monitor passed: no drift; metrics not judged (%d labelled rows, monitor.min_labelled_rows is %d)",
            outcome.labelled_rows,
            outcome.min_labelled_rows,
        )
    else:
        log.info("monitor passed: no drift, and every threshold held on the labelled rows")


COMMANDS = {
    "monitor": (
        "the prediction log of a window against the training reference: drift, metrics, fairness",
        add_arguments,
        run,
    ),
}
