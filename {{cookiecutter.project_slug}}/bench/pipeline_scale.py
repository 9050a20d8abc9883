"""Benchmark: every pipeline stage on a generated table of N rows x 30 mixed columns.

    python bench/pipeline_scale.py                          # 100,000 and 1,000,000 rows, CSV
    python bench/pipeline_scale.py --rows 20000 --format parquet --keep
    python bench/pipeline_scale.py --rows 1000000 --threads 1   # cores shared with other work

For each size: writes a seeded synthetic table (20 numeric and 10 text columns, a few % missing
values in some, a binary target that depends on several of them, a `sex` column to audit) and a
copy of config.yaml pointing at it (`columns: {}`, so types are inferred; thresholds low enough to
pass), then runs each stage as its own process (`python -m {{ cookiecutter.package_name }} <stage>`),
as CI does, with an embedded MLflow store in a temporary folder. Prints a Markdown table of wall
seconds, CPU seconds and peak RSS per stage and for the whole pipeline. Not a test: the figures
depend on the machine (and on what else runs on it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from project_env import add_threads_option, child_env

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"
STAGES = ("validate", "train", "evaluate", "gate", "export", "register")
NUMERIC, CATEGORICAL = 20, 9  # plus `sex`: 30 feature columns, and the target


@dataclass
class Measure:
    stage: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    exit_code: int


def table(rows: int, seed: int) -> pd.DataFrame:
    """A credit-like table: numbers of several scales, categories of 3 to 50 values, some missing."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(NUMERIC):
        scale = 10.0 ** (i % 5)
        values = rng.lognormal(0, 1, rows) * scale if i % 2 else rng.normal(0, 1, rows) * scale
        columns[f"num_{i:02d}"] = values.round(2)
    for i, size in enumerate(np.linspace(3, 50, CATEGORICAL).astype(int)):
        columns[f"cat_{i:02d}"] = rng.choice([f"c{i}_{k}" for k in range(size)], rows, p=rng.dirichlet(np.ones(size)))
    columns["sex"] = rng.choice(np.array(["female", "male"]), rows)
    frame = pd.DataFrame(columns)
    # The target depends on five numbers, two categories and (as in the sample data) on sex.
    score = (
        frame["num_00"]
        - 0.5 * frame["num_02"] / 100
        + 0.8 * np.log1p(frame["num_01"] / 10)
        + 0.3 * np.sign(frame["num_05"])
        - 0.2 * frame["num_10"]
        + frame["cat_00"].isin(["c0_0"]) * 0.8
        + frame["cat_03"].str.len() % 3 * 0.3
        + (frame["sex"] == "male") * 0.3
        + rng.normal(0, 1, rows)
    )
    frame["approved"] = (score > score.median()).astype(np.int64)
    for i, name in enumerate([*list(columns)[1:NUMERIC:4], "cat_01", "cat_05"]):
        frame.loc[rng.random(rows) < 0.01 * (1 + i % 3), name] = np.nan  # 1-3 % missing
    return frame


def write_config(folder: Path, data_file: Path) -> Path:
    settings = yaml.safe_load((PROJECT / "config.yaml").read_text())
    settings["data"].update(
        path=str(data_file),
        target="approved",
        features=[],
        columns={},
        sensitive_features=["sex"],
        max_null_fraction=0.05,
    )
    settings["gate"] = {
        "thresholds": {"test.roc_auc": {"min": 0.6}, "fairness.sex.demographic_parity_difference": {"max": 0.5}},
        "no_regression": [],
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def run_stage(stage: str, config: Path, log: Path, threads: int | None) -> Measure:
    """One stage as its own process; its peak RSS and CPU time from the kernel's accounting of it."""
    env = child_env(threads)
    started = time.perf_counter()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", PACKAGE, stage, "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
            env=env,
        )
        # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux), not all children's so far.
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return Measure(stage, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode)


def bench(rows: int, fmt: str, seed: int, keep: bool, threads: int | None) -> tuple[list[Measure], float, Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-scale-{rows}-"))
    started = time.perf_counter()
    data_file = folder / f"table.{fmt}"
    # Generated in a process of its own: a child's peak RSS as the kernel reports it starts from its
    # parent's RSS at fork, so a parent that once held the table would inflate every stage's figure.
    command = [sys.executable, __file__, "--rows", str(rows), "--seed", str(seed), "--write-table", str(data_file)]
    subprocess.run(command, check=True)
    generated = time.perf_counter() - started
    config = write_config(folder, data_file)
    log = folder / "stages.log"
    measures = []
    for stage in STAGES:
        print(f"{rows:,} rows: {stage} ...", file=sys.stderr, flush=True)
        measures.append(run_stage(stage, config, log, threads))
        if measures[-1].exit_code != 0:
            print(log.read_text()[-4000:], file=sys.stderr)
            break
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return measures, generated, folder


def report(rows: int, fmt: str, measures: list[Measure], generated: float) -> str:
    lines = [
        f"### {rows:,} rows x 30 columns ({fmt}; generated in {generated:.1f} s)",
        "",
        "| stage | wall s | CPU s | peak RSS MB | exit |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {m.stage} | {m.wall_s:.1f} | {m.cpu_s:.1f} | {m.peak_mb:,.0f} | {m.exit_code} |" for m in measures]
    slowest = max(measures, key=lambda m: m.wall_s)
    lines.append(
        f"| **pipeline** | **{sum(m.wall_s for m in measures):.1f}** | {sum(m.cpu_s for m in measures):.1f} | "
        f"**{max(m.peak_mb for m in measures):,.0f}** | slowest: {slowest.stage} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="how the table is written")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (data, outputs, stages.log)")
    add_threads_option(parser)
    parser.add_argument("--write-table", type=Path, help=argparse.SUPPRESS)  # the generator's own process
    args = parser.parse_args(argv)
    if args.write_table:
        frame = table(args.rows[0], args.seed)
        if args.write_table.suffix == ".parquet":
            frame.to_parquet(args.write_table, index=False)
        else:
            frame.to_csv(args.write_table, index=False)
        return 0
    threads = args.threads or os.environ.get("OMP_NUM_THREADS", "default")
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f}, OMP threads {threads}; pandas {pd.__version__}", end="\n\n")
    failed = False
    for rows in args.rows:
        measures, generated, folder = bench(rows, args.format, args.seed, args.keep, args.threads)
        print(report(rows, args.format, measures, generated), end="\n\n", flush=True)
        if args.keep:
            print(f"kept {folder}", end="\n\n")
        failed |= any(m.exit_code for m in measures)
    # The floor under every stage's figure (see bench()): this process's own peak.
    print(f"(this script's own peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
