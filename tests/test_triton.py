"""The Triton model repository `export` writes, served by a real `tritonserver` on loopback.

NVIDIA's images cannot be pulled here and PyPI's `tritonserver` wheel does not install, but
`nvidia-pytriton` bundles a real `tritonserver` 2.51 with the Python backend only (no onnxruntime
backend, no GPU): it runs from its own venv, `.venv-triton` (numpy<2; scripts/setup-venv.sh). So the
repository is written with the project's `python` backend variant (its model.py runs the same ONNX file
with onnxruntime; config.pbtxt the same but KIND_CPU) and Triton loads it, batches and answers KServe
v2 requests, which must equal onnxruntime in-process. What only NVIDIA's image exercises, the
onnxruntime backend, CUDA and KIND_GPU, is not run here (README).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton_http
import yaml

from conftest import PACKAGE, SLUG, TEMPLATE, cli, other_model
from processes import free_port, start, stop, wait_for_http

TRITON_VENV = Path(os.environ.get("TRITON_VENV", TEMPLATE / ".venv-triton"))


def triton_python() -> Path:
    python = TRITON_VENV / "bin" / "python"
    if not python.exists():
        message = f"{TRITON_VENV} missing: run scripts/setup-venv.sh (it installs requirements-triton.txt)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def triton_layout(python: Path, folder: Path) -> tuple[Path, Path, dict[str, str]]:
    """pytriton's bundled server: its binary, a backend folder with the stub for this Python, and the env."""
    script = (
        "import pathlib, sys, sysconfig, pytriton; "
        "print(pathlib.Path(pytriton.__file__).parent); print(sysconfig.get_config_var('LIBDIR')); "
        "print(f'{sys.version_info[0]}.{sys.version_info[1]}')"
    )
    package, libdir, version = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    dist = Path(package) / "tritonserver"
    backend = folder / "backends" / "python"
    shutil.copytree(dist / "backends" / "python", backend, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(dist / "python_backend_stubs" / version / "triton_python_backend_stub", backend)
    env = {
        # The backend stub embeds Python: without the interpreter's own lib directory first it loads the
        # system's libpython (traps.md, "Triton"); pytriton's bundled libraries sit beside the package.
        "LD_LIBRARY_PATH": os.pathsep.join([libdir, str(Path(package).parent / "nvidia_pytriton.libs")]),
        "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return dist / "bin" / "tritonserver", folder / "backends", env


@pytest.fixture(scope="module")
def triton(project_with_model, tmp_path_factory):
    """`triton-repository --backend python` of the pipeline's model, served by tritonserver on loopback."""
    python = triton_python()
    folder = tmp_path_factory.mktemp("triton")
    repository = folder / "repository"
    cli(project_with_model, "triton-repository", "--backend", "python", "--output", str(repository))
    server, backends, env = triton_layout(python, folder)
    port = free_port()
    log = folder / "tritonserver.log"
    # Only HTTP, only on loopback: gRPC and metrics would take more ports for nothing here.
    command = [str(server), "--model-repository", str(repository), "--backend-directory", str(backends)]
    command += ["--http-address", "127.0.0.1", "--http-port", str(port), "--allow-grpc", "false"]
    command += ["--allow-metrics", "false", "--strict-readiness", "true", "--exit-on-error", "true"]
    command += ["--exit-timeout-secs", "2"]  # nothing in flight at the end: do not wait the default 30 s
    started = time.monotonic()
    process = start(command, log, env=env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/v2/health/ready", timeout=120, process=process, log=log)
        print(f"tritonserver start to READY: {time.monotonic() - started:.2f} s")
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


def held_out(project: Path, count: int) -> list[dict]:
    """The last rows of the bundled table, by column name, as a client sends them."""
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"))
    numeric = {i.name for i in session.get_inputs() if i.type == "tensor(float)"}
    with (project / "data" / "credit_binary.csv").open() as handle:
        table = list(csv.DictReader(handle))[-count:]
    names = [i.name for i in session.get_inputs()]
    return [{name: float(row[name]) if name in numeric else row[name] for name in names} for row in table]


def in_process(project: Path, records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(project / "outputs" / "model.onnx"))
    types = {i.name: np.float32 if i.type == "tensor(float)" else object for i in session.get_inputs()}
    feeds = {name: np.array([r[name] for r in records], kind).reshape(-1, 1) for name, kind in types.items()}
    labels, probabilities = session.run(["label", "probabilities"], feeds)
    return labels, probabilities


def triton_inputs(records: list[dict]) -> list[triton_http.InferInput]:
    inputs = []
    for name in records[0]:
        values = [record[name] for record in records]
        number = isinstance(values[0], float)
        array = np.array(values, np.float32 if number else object).reshape(-1, 1)
        tensor = triton_http.InferInput(name, list(array.shape), "FP32" if number else "BYTES")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def test_export_writes_the_repository_from_the_contract(project_with_model):
    folder = project_with_model / "outputs" / "triton" / SLUG
    text = (folder / "config.pbtxt").read_text()
    assert (folder / "1" / "model.onnx").read_bytes() == (project_with_model / "outputs" / "model.onnx").read_bytes()
    session = ort.InferenceSession(str(folder / "1" / "model.onnx"))
    for tensor in session.get_inputs():
        kind = "TYPE_FP32" if tensor.type == "tensor(float)" else "TYPE_STRING"
        assert f'name: "{tensor.name}"\n    data_type: {kind}\n    dims: [1]' in text, tensor.name
    assert 'name: "label"\n    data_type: TYPE_INT64\n    dims: [1]\n    reshape: { shape: [] }' in text
    assert 'name: "probabilities"\n    data_type: TYPE_FP32\n    dims: [2]' in text
    assert "max_batch_size: 256" in text and "max_queue_delay_microseconds: 500" in text
    assert "kind: KIND_GPU" in text and 'backend: "onnxruntime"' in text
    run_id = json.loads((project_with_model / "outputs" / "run.json").read_text())["run_id"]
    assert f'key: "mlops.run_id" value: {{ string_value: "{run_id}" }}' in text
    # Logged with the run (artifact folder triton/), as the ONNX file itself is.
    (logged,) = project_with_model.glob(f"mlruns/**/{run_id}/artifacts/triton/{SLUG}")
    assert (logged / "config.pbtxt").read_text() == text
    assert (logged / "1" / "model.onnx").read_bytes() == (folder / "1" / "model.onnx").read_bytes()


def test_triton_answers_as_onnxruntime_does(project_with_model, triton):
    records = held_out(project_with_model, 300)
    labels, probabilities = in_process(project_with_model, records)
    client = triton_http.InferenceServerClient(triton)
    assert client.is_model_ready(SLUG)

    started = time.perf_counter()
    single = [client.infer(SLUG, triton_inputs([record])) for record in records]
    elapsed = time.perf_counter() - started
    print(f"Triton, {len(records)} single-row requests one after another: {len(records) / elapsed:.0f} requests/s")
    served_labels = np.concatenate([answer.as_numpy("label").reshape(-1) for answer in single])
    served_probabilities = np.concatenate([answer.as_numpy("probabilities") for answer in single])
    assert served_labels.tolist() == labels.tolist()
    np.testing.assert_allclose(served_probabilities, probabilities, rtol=1e-5, atol=1e-6)

    batch = records[:256]  # max_batch_size
    started = time.perf_counter()
    answer = client.infer(SLUG, triton_inputs(batch))
    print(f"Triton, one request of {len(batch)} rows: {(time.perf_counter() - started) * 1000:.1f} ms")
    assert answer.as_numpy("label").shape == (len(batch), 1)
    assert answer.as_numpy("label").reshape(-1).tolist() == labels[: len(batch)].tolist()
    np.testing.assert_allclose(answer.as_numpy("probabilities"), probabilities[: len(batch)], rtol=1e-5, atol=1e-6)
    # Past max_batch_size Triton refuses the request instead of running it.
    with pytest.raises(Exception, match="batch-size must be <= 256"):
        client.infer(SLUG, triton_inputs(records[:257]))


def test_smoke_command_passes_against_triton_and_catches_a_different_model(project_with_model, triton, tmp_path):
    url = ("--url", f"http://{triton}", "--server", "triton")
    cli(project_with_model, "image-smoke", *url, "--name", "triton")
    other = other_model(project_with_model, tmp_path / "other.onnx")
    result = cli(project_with_model, "image-smoke", *url, "--name", "triton", "--model", str(other), check=False)
    assert result.returncode == 1 and "serves run" in result.stderr, result.stderr


def test_triton_image_and_deployment_are_lint_clean(baked, tmp_path):
    project = baked()
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(project / "docker" / "triton.Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    # The deploy action's `kustomize edit add component`, on a copy of the staging overlay.
    deploy = shutil.copytree(project / "src" / PACKAGE / "targets" / "kubernetes", tmp_path / "kubernetes")
    overlay = deploy / "k8s" / "overlays" / "staging"
    with (overlay / "kustomization.yaml").open("a") as handle:
        handle.write("components: [../../components/triton]\n")
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    rendered = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=True).stdout
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered)}
    container = documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
