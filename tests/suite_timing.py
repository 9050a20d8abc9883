"""A pytest plugin writing each test's seconds to a JSON file (`--timings FILE`, scripts/bench_suite.py).

A test's seconds are its setup, call and teardown as pytest reports them, so the first test using a
costly fixture (a bake, a pipeline run, a server) carries the fixture's cost. Under pytest-xdist only
the controller records: the workers' reports reach it with their durations and the worker's id.

Beside the wall seconds, the CPU seconds spent meanwhile by the process running the test and by the
processes it waited for (`CpuMeter`, in every process that runs tests): a test far below its wall time
waits (a server, act, podman), and a third worker could use those gaps; one near it is CPU-bound.
Processes nobody waits for (podman's service) are not counted.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest


def plain_id(nodeid: str) -> str:
    """The test's id without the `@group` suffix xdist's loadgroup adds."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") else nodeid


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """Adds each phase's CPU seconds to its report (`user_properties`, which xdist sends to the controller)."""

    def __init__(self) -> None:
        self.since = cpu_seconds()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.since = cpu_seconds()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        now = cpu_seconds()
        outcome.get_result().user_properties.append(("cpu_seconds", round(now - self.since, 3)))
        self.since = now


class Recorder:
    def __init__(self, path: Path):
        self.path = path
        self.tests: dict[str, dict] = {}
        self.started = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(
            plain_id(report.nodeid), {"seconds": 0.0, "cpu_seconds": 0.0, "outcome": "passed", "worker": ""}
        )
        entry["seconds"] = round(entry["seconds"] + report.duration, 3)
        cpu = dict(report.user_properties).get("cpu_seconds", 0.0)
        entry["cpu_seconds"] = round(entry["cpu_seconds"] + cpu, 3)
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
