"""A pytest plugin writing each test's seconds to a JSON file (`--timings FILE`, scripts/bench_suite.py).

A test's seconds are its setup, call and teardown as pytest reports them, so the first test using a
costly fixture (a bake, a pipeline run, a server) carries the fixture's cost. Under pytest-xdist only
the controller records: the workers' reports reach it with their durations and the worker's id.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest


def plain_id(nodeid: str) -> str:
    """The test's id without the `@group` suffix xdist's loadgroup adds."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") else nodeid


class Recorder:
    def __init__(self, path: Path):
        self.path = path
        self.tests: dict[str, dict] = {}
        self.started = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(plain_id(report.nodeid), {"seconds": 0.0, "outcome": "passed", "worker": ""})
        entry["seconds"] = round(entry["seconds"] + report.duration, 3)
        worker = getattr(report, "node", None)  # set by xdist on the controller
        if worker is not None:
            entry["worker"] = worker.gateway.id
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        document = {"wall_seconds": round(time.monotonic() - self.started, 1), "tests": self.tests}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(document, indent=1) + "\n")
