"""A real PostgreSQL, a real `mlflow server` and a real Ray head on loopback, for the team-scale tests.

PostgreSQL comes from Debian's packages (scripts/system-packages.sh) and refuses to run as root,
so it runs as the `postgres` user in a data folder of the test's own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from processes import free_port, start, stop, wait_for_http

PG_ROOT = Path("/usr/lib/postgresql")


def postgres_bin() -> Path | None:
    versions = sorted(PG_ROOT.glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Postgres:
    """`folder` must be reachable by the postgres user: pytest's tmp folders are root-only."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    startup_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/mlflow"

    def start(self) -> Postgres:
        binaries = postgres_bin()
        data, sockets = self.folder / "data", self.folder / "sockets"
        for path in (data, sockets):
            path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            for path in (data, sockets):
                shutil.chown(path, "postgres")
        began = time.monotonic()
        subprocess.run(
            _as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"]),
            check=True,
            capture_output=True,
            cwd=self.folder,
        )
        self.process = start(
            _as_postgres(
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(sockets),
                    "-c",
                    "fsync=off",
                ]
            ),
            self.folder / "postgres.log",
            cwd=self.folder,
        )
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            ).returncode
            != 0
        ):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("PostgreSQL did not start:\n" + (self.folder / "postgres.log").read_text())
            time.sleep(0.1)
        subprocess.run(
            [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlflow"],
            check=True,
            capture_output=True,
        )
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class MlflowServer:
    backend: str
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    startup_seconds: list[float] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        began = time.monotonic()
        mlflow = Path(sys.executable).parent / "mlflow"
        self.process = start(
            [
                str(mlflow),
                "server",
                "--backend-store-uri",
                self.backend,
                "--artifacts-destination",
                str(self.folder / "artifacts"),
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            self.folder / "mlflow-server.log",
            env={"MLFLOW_DISABLE_TELEMETRY": "true"},
        )
        wait_for_http(f"{self.uri}/health", timeout=120, process=self.process, log=self.folder / "mlflow-server.log")
        self.startup_seconds.append(time.monotonic() - began)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class RayHead:
    """A one-node Ray cluster (`ray start --head --block`) on loopback ports of its own, token-authenticated.

    Every port Ray would otherwise take at a fixed default (client server 10001, dashboard agent 52365)
    is a free one, so another test's head on this machine does not collide. `stop` ends only what this
    head started: its process group, then any process still naming its own temp folder.
    """

    folder: Path
    num_cpus: int = 2
    token: str = field(default_factory=lambda: os.urandom(16).hex())
    dashboard_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    startup_seconds: float = 0.0

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def client_env(self) -> dict[str, str]:
        """What a process submitting jobs needs (Ray 2.60 turns token authentication on by default)."""
        return {"RAY_ADDRESS": self.address, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def start(self) -> RayHead:
        began = time.monotonic()
        ray = Path(sys.executable).parent / "ray"
        # Short: Ray's socket paths live under it and must fit in 107 bytes.
        self.temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        ports = {
            "--port": free_port(),
            "--ray-client-server-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--metrics-export-port": free_port(),
            "--dashboard-port": self.dashboard_port,
        }
        self.process = start(
            [
                str(ray),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                "--dashboard-host=127.0.0.1",
                f"--num-cpus={self.num_cpus}",
                "--object-store-memory=100000000",
                f"--temp-dir={self.temp}",
                "--disable-usage-stats",
                *(f"{flag}={port}" for flag, port in ports.items()),
            ],
            self.folder / "ray-head.log",
            # The jobs' `python` is this venv's: the cluster "image" has the project's dependencies.
            env={
                **self.client_env,
                "RAY_USAGE_STATS_ENABLED": "0",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            },
        )
        self._wait_until_it_answers_the_token(timeout=180)
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_until_it_answers_the_token(self, timeout: float) -> None:
        """The dashboard up and taking this head's token (without it the API answers 401)."""
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(
            f"{self.address}/api/version", headers={"Authorization": f"Bearer {self.token}"}
        )
        last_error = ""
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = self.folder / "ray-head.log"
                raise RuntimeError(f"ray head exited with {self.process.returncode}: see {log}")
            try:
                with urllib.request.urlopen(request, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                last_error = str(error)
            time.sleep(0.5)
        raise TimeoutError(f"ray head at {self.address} not ready after {timeout:.0f} s ({last_error})")

    def stop(self) -> None:
        if self.process is not None:
            # `ray start --block` stops its own processes in order on SIGTERM (seconds); signalling the
            # whole group at once leaves raylet waiting for a GCS already gone. The group is killed after.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=5)
            stop(self.process, timeout=10)
            self.process = None
        for pid in self._leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)

    def _leftovers(self) -> list[int]:
        """Processes of this head that left its process group (Ray's workers), found by its temp folder."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(self.temp).encode() in command:
                found.append(int(entry.name))
        return found
