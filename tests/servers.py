"""A real PostgreSQL and a real `mlflow server` on loopback, for the team-scale tests.

PostgreSQL comes from Debian's packages (scripts/system-packages.sh) and refuses to run as root,
so it runs as the `postgres` user in a data folder of the test's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
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
