"""Benchmark: what each stage of `make pipeline` costs on the project's own data and config.

    python bench/pipeline_stages.py                  # 5 pipelines, each from an empty tracking store
    python bench/pipeline_stages.py --runs 3 --same-store   # later runs find the store (and a champion)
    python bench/pipeline_stages.py --threads 1      # cores shared with other work

Each run is `python -m {{ cookiecutter.package_name }} pipeline` (one process, as `make pipeline`) in a
temporary folder holding a copy of config.yaml (data path made absolute) and model_card.yaml, so the
project's own mlflow.db, mlruns/ and outputs/ are left alone. Each stage's wall and CPU seconds are
measured around its `Stage.run` in that process (CPU: all its threads); "start-up" is the rest of the
process's wall time (interpreter, the CLI's imports, config). Prints a Markdown table of median, min
and max per stage over the runs. Not a test: wall times depend on the machine and on what else runs
on it (the load average is printed before and after); CPU times much less so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from project_env import add_threads_option, child_env

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"
STARTUP, WALL, CPU = "start-up", "process wall", "process CPU"
# The pipeline command with each stage's run timed, one JSON line per stage to the file argv[1] names.
DRIVER = """
import importlib, json, sys, time

measures, package, command = sys.argv[1], sys.argv[2], sys.argv[3:]

def timed(run):
    def measured(self, config, run_id=None):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return run(self, config, run_id)
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            with open(measures, "a") as out:
                out.write(json.dumps(dict(stage=self.name, wall=wall, cpu=cpu)) + "\\n")
    return measured

stages = importlib.import_module(package + ".stages")
stages.Stage.run = timed(stages.Stage.run)
cli = importlib.import_module(package + ".cli")
sys.argv = [package, *command]
sys.exit(cli.main())  # no arguments given: main() runs as `python -m` runs it (cli.skip_collection_at_exit)
"""


def prepare(folder: Path) -> Path:
    """config.yaml and model_card.yaml in `folder`, reading the project's data where it is."""
    settings = yaml.safe_load((PROJECT / "config.yaml").read_text())
    settings["data"]["path"] = str((PROJECT / settings["data"]["path"]).resolve())
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    if (PROJECT / "model_card.yaml").is_file():
        shutil.copy(PROJECT / "model_card.yaml", folder)
    return config


def run_pipeline(config: Path, log: Path, threads: int | None) -> dict[str, float]:
    """One pipeline process: each stage's wall and CPU seconds, start-up, and the process's wall and CPU."""
    env = child_env(threads)
    measures = log.with_suffix(".jsonl")
    started = time.perf_counter()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(measures), PACKAGE, "pipeline", "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time, its threads included
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the pipeline failed ({log}):\n{log.read_text()[-4000:]}")
    walls: dict[str, float] = {}
    cpus: dict[str, float] = {}
    for line in measures.read_text().splitlines():
        stage = json.loads(line)  # run twice when another stage needed it (Stage.needs): summed
        walls[stage["stage"]] = walls.get(stage["stage"], 0.0) + stage["wall"]
        cpus[f"{stage['stage']} CPU"] = cpus.get(f"{stage['stage']} CPU", 0.0) + stage["cpu"]
    return walls | {STARTUP: wall - sum(walls.values()), WALL: wall} | cpus | {CPU: usage.ru_utime + usage.ru_stime}


def report(runs: list[dict[str, float]]) -> str:
    lines = ["| stage | median s | min s | max s |", "|---|---:|---:|---:|"]
    for name in runs[0]:
        values = [run[name] for run in runs if name in run]
        median = f"{statistics.median(values):.2f}"
        if name == WALL:
            name, median = f"**{name}**", f"**{median}**"
        lines.append(f"| {name} | {median} | {min(values):.2f} | {max(values):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--same-store",
        action="store_true",
        help="one folder for every run: the first creates the store, the later ones find it (and a champion)",
    )
    add_threads_option(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (store, outputs, logs)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before", file=sys.stderr)
    folders: list[Path] = []
    runs = []
    for number in range(args.runs):
        if not folders or not args.same_store:
            folders.append(Path(tempfile.mkdtemp(prefix="bench-pipeline-")))
            config = prepare(folders[-1])
        print(f"run {number + 1} of {args.runs} in {folders[-1]} ...", file=sys.stderr, flush=True)
        runs.append(run_pipeline(config, folders[-1] / f"pipeline-{number + 1}.log", args.threads))
    store = "one store for all runs" if args.same_store else "each run from an empty store"
    print(f"### `make pipeline` on {PROJECT.name}'s config.yaml: {args.runs} runs, {store}\n")
    print(report(runs))
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} after")
    for folder in folders:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
