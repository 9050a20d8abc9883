"""Benchmark: `score` on generated tables of N rows: rows per second and peak memory, which must stay flat.

    python bench/score_scale.py                                  # 100,000 and 1,000,000 rows, CSV
    python bench/score_scale.py --rows 1000000 --format parquet --chunk-rows 100000
    python bench/score_scale.py --onnx path/to/model.onnx --keep

For each size: writes a table of N rows drawn (seeded, with replacement) from the bundled data, the
target left out as in a file to score, then runs `python -m {{ cookiecutter.package_name }} score --onnx` on it as its
own process and prints wall seconds, rows per second and the process's peak RSS. Needs an exported
model (`make pipeline`, or --onnx). Not a test: the figures depend on the machine.
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
from project_env import child_env

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"
WRITE_ROWS = 100_000  # the generator writes this many rows at a time: its own memory stays small too


@dataclass
class Measure:
    rows: int
    wall_s: float
    cpu_s: float
    peak_mb: float
    exit_code: int


def write_table(path: Path, rows: int, seed: int) -> None:
    """N rows resampled from the bundled data, without the target, written in blocks."""
    settings = yaml.safe_load((PROJECT / "config.yaml").read_text())
    source = pd.read_csv(PROJECT / settings["data"]["path"]).drop(columns=[settings["data"]["target"]])
    rng = np.random.default_rng(seed)
    writer = None
    try:
        for start in range(0, rows, WRITE_ROWS):
            block = source.iloc[rng.integers(0, len(source), min(WRITE_ROWS, rows - start))]
            if path.suffix == ".parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(block, preserve_index=False)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
            else:
                block.to_csv(path, mode="a" if start else "w", header=not start, index=False)
    finally:
        if writer is not None:
            writer.close()


def run_score(data_file: Path, onnx: Path, chunk_rows: int, log: Path) -> Measure:
    """`score` as its own process; its peak RSS and CPU time from the kernel's accounting of it."""
    env = child_env(dropped=("MLFLOW_", "GITHUB_"))
    command = [
        *(sys.executable, "-m", PACKAGE, "score", "--config", str(PROJECT / "config.yaml")),
        *("--input", str(data_file), "--onnx", str(onnx), "--chunk-rows", str(chunk_rows)),
        *("--output", str(data_file.with_name("predictions.parquet"))),
    ]
    started = time.perf_counter()
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux), not all children's so far.
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    rows = pd.read_parquet(data_file.with_name("predictions.parquet"), columns=["run_id"]).shape[0] if not status else 0
    return Measure(
        rows, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="how the table is written")
    parser.add_argument("--onnx", type=Path, default=PROJECT / "outputs" / "model.onnx")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (table, predictions, log)")
    parser.add_argument("--write-table", type=Path, help="only write a table of --rows[0] rows there (for other tools)")
    args = parser.parse_args(argv)
    if args.write_table:
        write_table(args.write_table, args.rows[0], args.seed)
        return 0
    if not args.onnx.is_file():
        print(f"{args.onnx}: no model; run `make pipeline` first or pass --onnx", file=sys.stderr)
        return 2
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; chunks of {args.chunk_rows:,} rows", end="\n\n"
    )
    print("| rows | format | wall s | rows/s | CPU s | peak RSS MB | exit |\n|---:|---|---:|---:|---:|---:|---:|")
    failed = False
    for rows in args.rows:
        folder = Path(tempfile.mkdtemp(prefix=f"bench-score-{rows}-"))
        data_file = folder / f"table.{args.format}"
        # Written by a process of its own: a child's peak RSS starts from its parent's at fork.
        subprocess.run([sys.executable, __file__, "--rows", str(rows), "--write-table", str(data_file)], check=True)
        m = run_score(data_file, args.onnx, args.chunk_rows, folder / "score.log")
        if m.exit_code:
            print((folder / "score.log").read_text()[-4000:], file=sys.stderr)
        failed |= bool(m.exit_code)
        print(
            f"| {rows:,} | {args.format} | {m.wall_s:.1f} | {m.rows / m.wall_s:,.0f} | {m.cpu_s:.1f} "
            f"| {m.peak_mb:,.0f} | {m.exit_code} |",
            flush=True,
        )
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    # The floor under the figure (see above): this process's own peak.
    print(f"\n(this script's own peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
