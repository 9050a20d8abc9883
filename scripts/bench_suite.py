"""What the template's test suite costs, per file and per test: a benchmark to run by hand, not a test.

    .venv/bin/python scripts/bench_suite.py                 # the full suite, as scripts/test.sh runs it
    .venv/bin/python scripts/bench_suite.py --fast          # the fast tier
    .venv/bin/python scripts/bench_suite.py -- -k workflows # anything after -- goes to pytest
    .venv/bin/python scripts/bench_suite.py --report FILE   # the report of an earlier run's FILE only

It runs `bash scripts/test.sh` with `--timings FILE` (tests/suite_timing.py records each test's setup,
call and teardown seconds, and the CPU seconds spent meanwhile), then
prints the wall time, each file's total and the slowest tests. A test's
seconds include the fixtures it set up first (a bake, a pipeline run, a server, act's tool cache), so
compare the same tests across runs, on an idle machine. With two workers the files' totals add up to
about twice the wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]


def load(path: Path) -> dict:
    """A --timings file, or JSON lines of {"test", "seconds", "at"} (one per test, as earlier runs logged)."""
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        wall = max(line["at"] for line in lines) - min(line["at"] - line["seconds"] for line in lines)
        tests = {line["test"]: {"seconds": line["seconds"], "outcome": "?", "worker": ""} for line in lines}
        return {"wall_seconds": wall, "tests": tests}


def report(document: dict, slowest: int) -> str:
    tests: dict[str, dict] = document["tests"]
    files: dict[str, list[dict]] = defaultdict(list)
    for test, entry in tests.items():
        files[test.split("::")[0]].append(entry)
    total = sum(entry["seconds"] for entry in tests.values())
    cpu = sum(entry.get("cpu_seconds", 0.0) for entry in tests.values())
    outcomes: dict[str, int] = defaultdict(int)
    for entry in tests.values():
        outcomes[entry["outcome"]] += 1
    lines = [
        f"wall {document['wall_seconds'] / 60:.1f} min; {len(tests)} tests "
        f"({', '.join(f'{count} {outcome}' for outcome, count in sorted(outcomes.items()))}); "
        f"their seconds add up to {total / 60:.1f} min, {cpu / 60:.1f} CPU-min (0 when not recorded)",
        "",
        f"{'seconds':>8}  {'CPU-s':>7}  {'tests':>5}  file",
    ]
    for file, entries in sorted(files.items(), key=lambda item: -sum(e["seconds"] for e in item[1])):
        seconds, cpu_seconds = (sum(e.get(key, 0.0) for e in entries) for key in ("seconds", "cpu_seconds"))
        lines.append(f"{seconds:8.1f}  {cpu_seconds:7.1f}  {len(entries):5d}  {file}")
    lines += ["", f"the {slowest} slowest tests:", f"{'seconds':>8}  {'CPU-s':>7}  worker  test"]
    for test, entry in sorted(tests.items(), key=lambda item: -item[1]["seconds"])[:slowest]:
        lines.append(
            f"{entry['seconds']:8.1f}  {entry.get('cpu_seconds', 0.0):7.1f}  {entry['worker'] or '-':>6}  {test}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="the fast tier only")
    parser.add_argument("--slowest", type=int, default=15, help="how many of the slowest tests to list")
    parser.add_argument(
        "--timings",
        type=Path,
        default=TEMPLATE / ".cache" / "suite-timings.json",
        help="where the run writes each test's seconds (default: .cache/suite-timings.json)",
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="print the report of FILE; run nothing")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    options = parser.parse_args()

    if options.report:
        print(report(load(options.report), options.slowest))
        return 0
    command = ["bash", str(TEMPLATE / "scripts" / "test.sh"), f"--timings={options.timings}"]
    command += ["--fast"] if options.fast else []
    options.timings.unlink(missing_ok=True)
    started = time.monotonic()
    returncode = subprocess.run([*command, *options.pytest_args], cwd=TEMPLATE).returncode
    elapsed = time.monotonic() - started
    if not options.timings.exists():
        print(f"{' '.join(command)} exited {returncode} before pytest wrote {options.timings}", file=sys.stderr)
        return returncode or 1
    print(f"\n`{' '.join(command[1:])}` (set-up included): {elapsed / 60:.1f} min, exit {returncode}")
    print(report(load(options.timings), options.slowest))
    return returncode


if __name__ == "__main__":
    sys.exit(main())
