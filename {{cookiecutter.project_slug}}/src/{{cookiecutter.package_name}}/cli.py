"""Command line: `python -m {{ cookiecutter.package_name }} <stage>`; what CI runs is what you run."""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import pkgutil
import sys
from functools import partial
from importlib import import_module
from pathlib import Path
from types import ModuleType

from . import config as configuration
from . import family as families
from . import lineage, ops, stage_docs, stages, targets
from .errors import CheckFailed, UsageError
from .modelcard import command as model_card
from .ops import container, doctor, github_ci, ray_job, registry
from .serving import server
from .stages import Stage
from .triton import command as triton

# Modules with a COMMANDS table {name: (help, add_arguments, run)}; run(args) raises UsageError or
# CheckFailed when it cannot do its job, and main() turns those into exit codes. The family's come
# first (family.Family.commands), then these, then any other ops module's, then each target's (a folder
# in targets/ whose __init__.py has a COMMANDS table: the post-generation hook keeps only the chosen ones).
CORE_COMMANDS = (model_card, server, container, triton, github_ci, doctor, registry, stage_docs)


def command_modules() -> list[ModuleType]:
    family = [import_module(f"{families.PACKAGE}.{name}") for name in families.current().commands]
    other_ops = [
        module
        for info in pkgutil.iter_modules(ops.__path__)
        if hasattr(module := import_module(f"{ops.__name__}.{info.name}"), "COMMANDS") and module not in CORE_COMMANDS
    ]
    chosen_targets = [
        module
        for info in pkgutil.iter_modules(targets.__path__)
        if info.ispkg and hasattr(module := import_module(f"{targets.__name__}.{info.name}"), "COMMANDS")
    ]
    return [*family, *CORE_COMMANDS, *other_ops, *chosen_targets]


log = logging.getLogger("{{ cookiecutter.package_name }}")


def load_config(args: argparse.Namespace) -> configuration.Config:
    return configuration.load(args.config, data=args.data, target=args.target, init_from=args.init_from)


def run_stage(stage: Stage, args: argparse.Namespace) -> None:
    config = load_config(args)
    cluster = ray_job.address(args.ray_address) if stage.remote else None
    if cluster:
        ray_job.submit(config, args.config, stage.name, cluster, data_given=bool(args.data or args.target))
        return
    # register alone takes the ONNX digest export's CI job published (README, "Trust model").
    options = {"onnx_sha256": args.onnx_sha256} if getattr(args, "onnx_sha256", None) else {}
    stage.run(config, run_id=args.run_id, **options)
    if stage.remote and os.environ.get(lineage.IN_RAY_JOB):
        ray_job.hand_back(config)


def run_pipeline(args: argparse.Namespace) -> None:
    config = load_config(args)
    cluster = ray_job.address(args.ray_address)
    if not cluster:
        stages.run_pipeline(config)
        return
    # On a cluster: validate, tune and train there as one job (train runs what it needs), the rest here.
    ray_job.submit(config, args.config, "train", cluster, data_given=bool(args.data or args.target))
    after = [stage for stage in stages.pipeline() if stage.attaches]
    for stage in after:
        stage.run(config)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="{{ cookiecutter.package_name }}", description=__doc__)
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = top.add_subparsers(dest="command", required=True, metavar="command")

    def stage_parser(name: str, help: str, attaches: bool, remote: bool) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.add_argument("--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml")
        sub.add_argument("--data", type=Path, help="table (.csv, .parquet) to use instead of config data.path")
        sub.add_argument("--target", help="target column to use instead of config data.target")
        if attaches:
            sub.add_argument("--run-id", help="run to attach to (default: $MLFLOW_RUN_ID, else outputs/run.json)")
        else:
            sub.set_defaults(run_id=None)
        if name in ("train", "pipeline"):
            sub.add_argument(
                "--init-from",
                metavar="MODEL",
                help="start from this model instead of from scratch (config model.init_from): "
                "models:/<name>@<alias>, models:/<name>/<version> or a run's model URI",
            )
        else:
            sub.set_defaults(init_from=None)
        if name == "register":
            sub.add_argument(
                "--onnx-sha256",
                metavar="SHA256",
                help="the digest export published (CI: export's job output); the stored file and the run's "
                "tag must both match it (default: the run's own tag)",
            )
        if remote:
            sub.add_argument(
                "--ray-address",
                help="run as a job on this Ray cluster (http://<head>:8265; default: $RAY_ADDRESS, unset: here)",
            )
        else:
            sub.set_defaults(ray_address=None)
        return sub

    pipeline = stages.pipeline()
    for stage in pipeline:
        stage_parser(stage.name, stage.help, stage.attaches, stage.remote).set_defaults(
            handler=partial(run_stage, stage)
        )
    stage_parser("pipeline", " -> ".join(stage.name for stage in pipeline), attaches=False, remote=True).set_defaults(
        handler=run_pipeline
    )
    for module in command_modules():
        for name, (help, add_arguments, command) in module.COMMANDS.items():
            sub = commands.add_parser(name, help=help)
            add_arguments(sub)
            sub.set_defaults(handler=command)
    return top


def configure(verbose: bool = False) -> None:
    """What every command runs under, and notebooks/explore.ipynb too: the stages' progress lines
    without the libraries' chatter, no MLflow telemetry, no progress bar per downloaded file."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("mlflow", "alembic", "urllib3", *families.current().noisy_loggers):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file is noise


def skip_collection_at_exit() -> None:
    """At the process's exit, no garbage collection over every object the stages' libraries made.

    Python's teardown collects garbage while it clears each module; with MLflow, Great Expectations,
    scikit-learn and shap loaded, that is millions of objects walked again and again: 2-3 s of CPU
    after the pipeline has finished. Frozen objects are left out of those collections; the process
    exits and its memory goes back to the system all the same. Python does not promise to finalize
    objects still alive at exit anyway, and what must happen at exit (MLflow ending its run, logging
    flushing its handlers, temporary folders going) are atexit handlers, which still run.
    """
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    """The command line; `argv` None: this process IS the command (`python -m`, the console script)."""
    if argv is None:  # in-process callers (tests, the Databricks job's wrapper) go on after main returns
        atexit.register(skip_collection_at_exit)
    args = parser().parse_args(argv)
    configure(args.verbose)
    try:
        args.handler(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CheckFailed as error:
        print(f"failed: {error}", file=sys.stderr)
        return 1
    return 0
