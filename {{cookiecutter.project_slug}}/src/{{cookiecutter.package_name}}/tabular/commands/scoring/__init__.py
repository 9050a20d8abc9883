"""`score`: batch predictions for a CSV or Parquet file, by the registry's champion or a local ONNX file.

    python -m {{ cookiecutter.package_name }} score --input new.csv                      # models:/<name>@champion
    python -m {{ cookiecutter.package_name }} score --input new.parquet --alias challenger --log-to-db
    python -m {{ cookiecutter.package_name }} score --input new.csv --onnx outputs/model.onnx   # laptop: no registry

The input is validated chunk by chunk with the training suite (stages/validate.py), scored with
onnxruntime through the ONNX contract the server uses, and written to Parquet with `prediction`,
one `probability_<class>` per class (classification), `model_version` and `run_id` (source.py,
batch.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from .... import lineage
from ....errors import UsageError
from ....ops.container import registered_version
from ....ops.registry import PROTECTED_REF
from ....serving import contract, prediction_log

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 50_000


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml")
    parser.add_argument("--input", type=Path, required=True, help="the table to score (.csv, .csv.gz, .parquet)")
    parser.add_argument(
        "--output", type=Path, help=f"Parquet file to write (default: outputs/{lineage.PREDICTIONS_FILE})"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", help="models:/<name>@<alias> or models:/<name>/<version> (default: the alias)")
    which.add_argument(
        "--alias", default=lineage.CHAMPION, help=f"alias of config tracking.model_name (default: {lineage.CHAMPION})"
    )
    which.add_argument(
        "--onnx", type=Path, help="score with this local ONNX file instead: no registry, so none of its checks"
    )
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")
    parser.add_argument(
        "--protected-ref",
        default=PROTECTED_REF,
        help=f"the only ref whose versions are trusted (default: {PROTECTED_REF})",
    )
    parser.add_argument("--chunk-rows", type=positive, default=DEFAULT_CHUNK_ROWS, help="rows per chunk (memory)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (default 0: all cores)")
    parser.add_argument(
        "--log-to-db",
        action="store_true",
        help=f"also write each row to the prediction log (${prediction_log.DATABASE_URL_ENV}, source 'batch')",
    )


def run(args: argparse.Namespace) -> None:
    from ....serving.model import ModelError, load
    from ....serving.settings import Settings
    from ... import config as configuration
    from . import batch, source

    config = configuration.load(args.config)
    if not args.input.is_file():
        raise UsageError(f"--input {args.input}: file not found")
    database_url = None
    if args.log_to_db:
        database_url = os.environ.get(prediction_log.DATABASE_URL_ENV)
        if not database_url:
            raise UsageError(
                f"--log-to-db: set {prediction_log.DATABASE_URL_ENV} to the prediction log's PostgreSQL URL "
                "(postgresql://user@host:5432/db)"
            )
    output = args.output or config.outputs / lineage.PREDICTIONS_FILE
    with tempfile.TemporaryDirectory(prefix="score-") as folder:
        if args.onnx is not None:
            onnx = args.onnx
        else:
            uri = args.model or f"models:/{config.tracking.model_name}@{args.alias}"
            chosen = source.from_registry(uri, args.tracking_uri, args.protected_ref, Path(folder))
            onnx = chosen.onnx
        try:
            model = load(Settings(model_path=onnx, intra_op_threads=args.threads))
        except ModelError as error:
            raise UsageError(str(error)) from error
        if args.onnx is not None:
            run_id = model.metadata.get(contract.RUN_ID, "")
            chosen = source.from_file(
                onnx,
                model.metadata.get(contract.MODEL_NAME) or config.tracking.model_name,
                run_id,
                # The version `register` gave this run, when outputs/registered.json sits beside the file.
                model.metadata.get(contract.MODEL_VERSION) or registered_version(onnx.parent, run_id),
            )
        log.info("scoring %s with %s", args.input, chosen.description)
        try:
            scored = batch.score(config, model, chosen, args.input, output, args.chunk_rows, database_url)
        except prediction_log.LogError as error:
            raise UsageError(str(error)) from error
    logged = f"; {scored.logged} rows in the prediction log" if database_url else ""
    log.info(
        "score done: %d rows in %d chunk(s), %.1f s (%.0f rows/s) -> %s%s",
        scored.rows,
        scored.chunks,
        scored.seconds,
        scored.rows / max(scored.seconds, 1e-9),
        scored.output,
        logged,
    )


# name -> (help, add_arguments, run): what cli.py registers as subcommands.
COMMANDS = {
    "score": (
        "batch predictions for a CSV/Parquet file (validated, chunked) to Parquet, by registry alias or --onnx",
        add_arguments,
        run,
    )
}
