"""Command line: `python -m {{ cookiecutter.package_name }} <stage>`; what CI runs is what you run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from . import config as configuration
from .errors import CheckFailed, UsageError

log = logging.getLogger("{{ cookiecutter.package_name }}")

STAGES = ("validate", "train", "evaluate", "gate", "export", "register")
# Modules with a COMMANDS table {name: (help, add_arguments, run)}; run(args) returns the exit code.
EXTRA_COMMANDS = ("serve", "container", "github_ci", "registry")


def _stage(name: str):
    from importlib import import_module

    return import_module(f".stages.{name}", __package__)


def _module(name: str):
    from importlib import import_module

    return import_module(f".{name}", __package__)


def run_stage(name: str, args: argparse.Namespace) -> None:
    config = configuration.load(args.config, data=args.data, target=args.target)
    started = time.perf_counter()
    log.info("== %s", name)
    if name in ("validate", "train"):
        _stage(name).run(config)
    else:
        _stage(name).run(config, run_id=args.run_id)
    log.info("== %s done in %.1f s", name, time.perf_counter() - started)


def pipeline(args: argparse.Namespace) -> None:
    """All stages in order in one process; the run id passes from train to the rest."""
    config = configuration.load(args.config, data=args.data, target=args.target)
    timings = {}
    run_id = None
    for name in STAGES:
        started = time.perf_counter()
        log.info("== %s", name)
        if name == "validate":
            _stage(name).run(config)
        elif name == "train":
            run_id = _stage(name).run(config).run_id
        else:
            _stage(name).run(config, run_id=run_id)
        timings[name] = time.perf_counter() - started
    log.info("pipeline done: %s (run %s)", ", ".join(f"{n} {t:.1f} s" for n, t in timings.items()), run_id)


def sample_data(args: argparse.Namespace) -> None:
    from .sample_data import write

    for path in write(args.output):
        log.info("wrote %s", path)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="{{ cookiecutter.package_name }}", description=__doc__)
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = top.add_subparsers(dest="command", required=True, metavar="command")

    def stage_parser(name: str, help: str, attach: bool) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.add_argument("--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml")
        sub.add_argument("--data", type=Path, help="CSV file to use instead of config data.path")
        sub.add_argument("--target", help="target column to use instead of config data.target")
        if attach:
            sub.add_argument("--run-id", help="run to attach to (default: $MLFLOW_RUN_ID, else outputs/run.json)")
        return sub

    helps = {"validate": "check the input data with Great Expectations",
             "train": "start the MLflow run and train the model",
             "evaluate": "metrics, fairness audit and plots on the held-out rows",
             "gate": "check thresholds and no-regression against the champion",
             "export": "convert to ONNX and check onnxruntime parity",
             "register": "register a run that passed gate and parity, as 'challenger'"}
    for name in STAGES:
        stage_parser(name, helps[name], attach=name not in ("validate", "train")).set_defaults(
            handler=lambda args, name=name: run_stage(name, args))
    everything = stage_parser("pipeline", " -> ".join(STAGES), attach=False)
    everything.set_defaults(handler=pipeline)
    data_parser = commands.add_parser("sample-data", help="regenerate the bundled sample data (seeded)")
    data_parser.add_argument("--output", type=Path, default=Path("data"))
    data_parser.set_defaults(handler=sample_data)
    for module in EXTRA_COMMANDS:
        for name, (help, add_arguments, command) in _module(module).COMMANDS.items():
            sub = commands.add_parser(name, help=help)
            add_arguments(sub)
            sub.set_defaults(handler=command, returns_code=True)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("mlflow", "great_expectations", "alembic", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file is noise
    try:
        code = args.handler(args)
        if getattr(args, "returns_code", False):
            return code
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CheckFailed as error:
        print(f"failed: {error}", file=sys.stderr)
        return 1
    return 0
