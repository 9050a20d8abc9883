"""A container engine for the template's tests on a machine with no Docker daemon and no registry.

podman, configured under the template's gitignored .cache/podman (runc + cgroupfs + file events
logger + ulimits: crun and systemd cgroups fail on such hosts; overlay storage, not vfs), a local
Debian base image bootstrapped once with python3 and the host's CA bundle (so pip inside a build
works through TLS interception), and `podman system service` so the Docker SDK can drive it.

Several pytest-xdist workers may use it at once (scripts/test.sh): podman's storage takes its own locks,
each worker's service has its own socket, and the base image is made by one worker at a time (a file lock).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from processes import start, stop

TEMPLATE = Path(__file__).resolve().parents[1]
CACHE = TEMPLATE / ".cache"
PODMAN = CACHE / "podman"
BASE_IMAGE = "localhost/mlops-base:bookworm"
BASE_TARBALL = CACHE / "base-bookworm-python3.tar"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]


def environment() -> dict[str, str]:
    """Variables that point podman (and everything it starts) at the test configuration."""
    PODMAN.mkdir(parents=True, exist_ok=True)
    containers = _written(PODMAN / "containers.conf", CONTAINERS_CONF)
    storage = _written(
        PODMAN / "storage.conf",
        f'[storage]\ndriver = "overlay"\ngraphroot = "{PODMAN / "storage"}"\nrunroot = "{PODMAN / "run"}"\n',
    )
    return {"CONTAINERS_CONF": str(containers), "CONTAINERS_STORAGE_CONF": str(storage)}


def _written(path: Path, text: str) -> Path:
    """`text` in `path`, replaced whole: a podman of another worker reading it never sees it half written."""
    if not path.exists() or path.read_text() != text:
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(text)
        partial.replace(path)
    return path


def podman(*args: str, check: bool = True, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["podman", *args],
        env={**os.environ, **environment()},
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def _bootstrap_tarball() -> None:
    """debootstrap a minimal Debian with python3 once (~30 s); the tarball is reused afterwards."""
    rootfs = CACHE / "base-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm", str(rootfs)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    # The host's trust store: HTTPS from inside a build passes the same TLS interception as the host's.
    shutil.copy(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    extra = Path("/usr/local/share/ca-certificates")
    if extra.is_dir():
        for certificate in extra.glob("*.crt"):
            shutil.copy(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    partial = BASE_TARBALL.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
    partial.rename(BASE_TARBALL)
    shutil.rmtree(rootfs, ignore_errors=True)


@contextmanager
def _locked(name: str):
    """An exclusive lock under .cache/, for every process of every test session using this checkout."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_base_image() -> str:
    with _locked("base-image"):  # a second worker waits, then finds the image
        if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
            return BASE_IMAGE
        if not BASE_TARBALL.exists():
            _bootstrap_tarball()
        podman("import", "--change", 'CMD ["/bin/bash"]', str(BASE_TARBALL), BASE_IMAGE)
    return BASE_IMAGE


@contextmanager
def docker_api(log: Path):
    """`podman system service` on a socket of our own; yields the DOCKER_HOST value for it."""
    socket = PODMAN / f"podman-{os.getpid()}.sock"
    socket.unlink(missing_ok=True)
    os.environ.update(environment())  # the service and anything it spawns read the same configuration
    service = start(["podman", "system", "service", "--time=0", f"unix://{socket}"], log)
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        stop(service)
        socket.unlink(missing_ok=True)
