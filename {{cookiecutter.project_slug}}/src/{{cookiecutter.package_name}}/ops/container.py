"""Build, run, smoke-test and stop the serving image through the Docker Engine API.

Uses the Docker SDK for Python, so it drives Docker or podman alike (podman: run
`podman system service --time=0 unix:///path/podman.sock` and set DOCKER_HOST=unix:///path/podman.sock).

Commands (COMMANDS, wired into the project's CLI): image, image-run, image-smoke, image-stop. Options fall back to
environment variables (IMAGE_TAG, IMAGE_BASE, IMAGE_ORT_PACKAGE, IMAGE_NAME, IMAGE_PORT), so CI and
`make` can set them once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from .. import family as families
from .. import lineage
from ..errors import CheckFailed
from ..serving import contract

SLUG = "{{ cookiecutter.project_slug }}"
DEFAULT_BASE = "nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04"  # the Dockerfile's default (GPU)
CONTAINER_PORT = 8000
DEFAULT_MODEL = Path("outputs") / lineage.ONNX_FILE


def _client() -> Any:  # docker.DockerClient; the SDK ships no type information
    # Every failure here and below is a CheckFailed (exit code 1) saying what failed and how to look.
    try:
        import docker
    except ImportError as error:
        raise CheckFailed("the `docker` package is missing: pip install 'docker>=7.1'") from error
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as error:
        raise CheckFailed(
            f"no container engine at {os.environ.get('DOCKER_HOST', 'the default socket')}: {error}. "
            "Start Docker, or `podman system service --time=0 unix:///tmp/podman.sock` and set "
            "DOCKER_HOST=unix:///tmp/podman.sock"
        ) from error
    return client


def model_metadata(path: Path) -> dict[str, str]:
    import onnxruntime as ort

    if not path.is_file():
        raise CheckFailed(f"{path}: model file not found; run `make pipeline` (its export stage writes it)")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def default_tag() -> str:
    return os.environ.get("IMAGE_TAG") or f"{SLUG}:dev"


# --- image ---------------------------------------------------------------------------------------


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", default=default_tag(), help="image tag ($IMAGE_TAG; default %(default)s)")
    parser.add_argument(
        "--base-image",
        default=os.environ.get("IMAGE_BASE", DEFAULT_BASE),
        help="BASE_IMAGE build arg ($IMAGE_BASE; default: CUDA runtime for onnxruntime-gpu)",
    )
    parser.add_argument(
        "--ort-package",
        default=os.environ.get("IMAGE_ORT_PACKAGE", "onnxruntime-gpu"),
        choices=["onnxruntime-gpu", "onnxruntime"],
        help="onnxruntime-gpu, or onnxruntime for CPU",
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX file (in the project)")
    parser.add_argument("--project", type=Path, default=Path("."), help="build context: the project root")
    parser.add_argument("--quiet", action="store_true", help="do not stream the build log")


def registered_version(outputs: Path, run_id: str) -> str:
    """The version `register` gave this model's run (outputs/registered.json), else "" (unregistered)."""
    try:
        registered = json.loads((outputs / lineage.REGISTERED_FILE).read_text())
    except (OSError, ValueError):
        return ""
    return str(registered.get("model_version", "")) if registered.get("run_id") == run_id else ""


def build_image(project: Path, tag: str, base_image: str, ort_package: str, model: Path, quiet: bool = False) -> str:
    """Build docker/Dockerfile with the project as context; returns the image id."""
    project = project.resolve()
    model_path = (model if model.is_absolute() else project / model).resolve()
    try:
        relative_model = model_path.relative_to(project).as_posix()
    except ValueError:
        raise CheckFailed(f"{model_path}: the model must be inside the build context {project}") from None
    run_id = model_metadata(model_path).get(contract.RUN_ID, "")
    build_args = {
        "BASE_IMAGE": base_image,
        "ORT_PACKAGE": ort_package,
        "MODEL_PATH": relative_model,
        "REVISION": lineage.git_sha(project),
        "MLFLOW_RUN_ID": run_id or "unknown",
        "MODEL_VERSION": registered_version(model_path.parent, run_id),
    }
    client = _client()
    started = time.perf_counter()
    image_id = None
    output = []
    for chunk in client.api.build(
        path=str(project),
        dockerfile="docker/Dockerfile",
        tag=tag,
        buildargs=build_args,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    ):
        if "stream" in chunk:
            output.append(chunk["stream"])
            if not quiet:
                print(chunk["stream"], end="", flush=True)
        if "error" in chunk:
            raise CheckFailed(f"building {tag} failed: {chunk['error'].strip()}\n{''.join(output[-30:])}")
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    image = client.images.get(tag)
    print(
        f"built {tag} ({image.short_id}, {image.attrs.get('Size', 0) / 1e6:.0f} MB) from {base_image} with "
        f"{ort_package} in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return image_id or image.id


def build_command(args: argparse.Namespace) -> None:
    build_image(args.project, args.tag, args.base_image, args.ort_package, args.model, args.quiet)


# --- image-run / image-stop --------------------------------------------------------------------------


def _name_and_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", default=os.environ.get("IMAGE_NAME", f"{SLUG}-serving"), help="container name ($IMAGE_NAME)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("IMAGE_PORT", "8080")),
        help="host port mapped to the container's 8000 ($IMAGE_PORT)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", default=default_tag(), help="image to run ($IMAGE_TAG)")
    _name_and_port(parser)
    parser.add_argument(
        "--bind",
        default=os.environ.get("IMAGE_BIND", "127.0.0.1"),
        help="host address the port is published on ($IMAGE_BIND; default 127.0.0.1, this machine only: "
        "0.0.0.0 answers every network the host is on, with no authentication in front)",
    )
    parser.add_argument("--gpus", action="store_true", help="request all GPUs (NVIDIA container toolkit)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for /ready")


def remove_container(name: str) -> bool:
    import docker.errors

    try:
        container = _client().containers.get(name)
    except docker.errors.NotFound:
        return False
    container.remove(force=True)
    return True


def wait_ready(url: str, timeout: float, container: Any = None) -> float:
    """Poll /ready; returns seconds waited. Raises with the container's log if it dies or times out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if container is not None:
            container.reload()
            if container.status in ("exited", "dead"):
                raise CheckFailed(f"container {container.name} exited:\n{container.logs(tail=40).decode()}")
        time.sleep(0.2)
    logs = container.logs(tail=40).decode() if container is not None else ""
    raise CheckFailed(f"{url}/ready not 200 after {timeout:.0f} s\n{logs}")


def published(port: int, bind: str = "127.0.0.1") -> dict[str, tuple[str, int]]:
    """docker-py's `ports`: the container's port on `bind` only (a bare port would mean every interface)."""
    return {f"{CONTAINER_PORT}/tcp": (bind, port)}


def start_container(
    tag: str, name: str, port: int, gpus: bool = False, timeout: float = 60, bind: str = "127.0.0.1"
) -> float:
    import docker.types

    remove_container(name)
    requests = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])] if gpus else None
    container = _client().containers.run(
        tag, name=name, detach=True, ports=published(port, bind), device_requests=requests
    )
    local = "127.0.0.1" if bind in ("0.0.0.0", "::") else f"[{bind}]" if ":" in bind else bind
    waited = wait_ready(f"http://{local}:{port}", timeout, container)
    print(f"{name} ready on http://{local}:{port} (published on {bind}) after {waited:.1f} s", file=sys.stderr)
    return waited


def start_command(args: argparse.Namespace) -> None:
    start_container(args.tag, args.name, args.port, args.gpus, args.timeout, args.bind)


def add_stop_arguments(parser: argparse.ArgumentParser) -> None:
    _name_and_port(parser)


def stop_command(args: argparse.Namespace) -> None:
    print(f"{args.name}: {'removed' if remove_container(args.name) else 'not running'}", file=sys.stderr)


# --- image-smoke -------------------------------------------------------------------------------------


def add_smoke_arguments(parser: argparse.ArgumentParser) -> None:
    _name_and_port(parser)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the model in the image")
    parser.add_argument("--sample", type=Path, help="CSV with feature columns (default: the config's data file)")
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument(
        "--server", choices=["builtin", "triton"], help="the server's protocol (default: the config's serve.server)"
    )
    parser.add_argument("--model-name", help="Triton's model name (default: the config's tracking.model_name)")
    parser.add_argument("--url", help="the server's base URL (default: http://127.0.0.1:PORT)")


def sample_rows(schema: dict, sample: Path | None, config: Path, rows: int) -> list[dict]:
    """Real rows from a table (default: the config's data file) if there is one, else rows made from the schema.

    The table is read as the pipeline reads it (the config's CSV options, or Parquet), and sent by
    the users' own column names, with missing values as JSON null (the family's smoke_rows).
    """
    found = families.current().smoke_rows(schema, sample, config, rows)
    if found is not None:
        return found
    made = []
    for index in range(rows):
        row = {}
        for feature in schema["features"]:
            categories = feature.get("categories") or [contract.MISSING_CATEGORY]
            number = feature["type"] == contract.NUMBER
            row[feature["name"]] = float(index) if number else categories[index % len(categories)]
        made.append(row)
    return made


def expected_predictions(model: Path, schema: dict, records: list[dict]) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = contract.feeds_from_records(records, schema)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def post_json(url: str, payload: dict, timeout: float = 30) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"POST {url}: {error.code} {error.read().decode(errors='replace')[:500]}") from error


def compare(served: dict, expected: dict) -> list[str]:
    """Differences between served outputs (label/probabilities or prediction) and onnxruntime's ([] = none)."""
    problems = []
    if "label" in expected:
        labels = np.asarray(served["label"]).reshape(-1).tolist()
        if labels != expected["label"].tolist():
            problems.append(f"labels differ: served {labels} != expected {expected['label'].tolist()}")
        if not np.allclose(served["probabilities"], expected["probabilities"], atol=1e-6, rtol=1e-5):
            problems.append("probabilities differ beyond 1e-5")
    elif not np.allclose(
        np.asarray(served["prediction"]).reshape(-1), expected["prediction"].reshape(-1), atol=1e-6, rtol=1e-5
    ):
        problems.append("predictions differ beyond 1e-5")
    return problems


def smoke(url: str, model: Path, records: list[dict]) -> list[str]:
    """Differences between this project's server's predictions and in-process onnxruntime ([] = none)."""
    metadata = model_metadata(model)
    with urllib.request.urlopen(f"{url}/metadata", timeout=10) as response:
        served = json.loads(response.read())
    problems = []
    if served.get("run_id") != metadata.get(contract.RUN_ID, ""):
        problems.append(
            f"the container serves run {served.get('run_id')!r}, {model} is run {metadata.get(contract.RUN_ID)!r}"
        )
    body = post_json(f"{url}/predict", {"records": records})
    expected = expected_predictions(model, json.loads(metadata[contract.SCHEMA]), records)
    answer = {
        "label": body["predictions"],
        "probabilities": body.get("probabilities"),
        "prediction": body["predictions"],
    }
    return problems + compare(answer, expected)


def smoke_triton(url: str, name: str, model: Path, records: list[dict]) -> list[str]:
    """The same for Triton, over KServe v2: the loaded model's run (its config's parameters), then its answers."""
    from ..triton import kserve

    metadata = model_metadata(model)
    served_run = kserve.parameter(kserve.model_config(url, name), contract.RUN_ID)
    problems = []
    if served_run != metadata.get(contract.RUN_ID, ""):
        problems.append(
            f"Triton's {name!r} serves run {served_run!r}, {model} is run {metadata.get(contract.RUN_ID)!r}"
        )
    schema = json.loads(metadata[contract.SCHEMA])
    answer = kserve.infer(url, name, records, schema)
    return problems + compare(answer, expected_predictions(model, schema, records))


def smoke_command(args: argparse.Namespace) -> None:
    schema = json.loads(model_metadata(args.model)[contract.SCHEMA])
    records = sample_rows(schema, args.sample, args.config, args.rows)
    server, name = args.server, args.model_name
    if args.config.is_file() and (server is None or name is None):
        from .. import config as configuration

        settings = configuration.load(args.config)
        server, name = server or settings.serve.server, name or settings.tracking.model_name
    url = args.url or f"http://127.0.0.1:{args.port}"
    if server == "triton":
        problems = smoke_triton(url, name or SLUG, args.model, records)
    else:
        problems = smoke(url, args.model, records)
    if problems:
        raise CheckFailed(f"smoke test of {args.name} ({server or 'builtin'} server at {url}): " + "; ".join(problems))
    print(f"smoke: {len(records)} rows served by {args.name} equal in-process onnxruntime", file=sys.stderr)


# --- CLI -----------------------------------------------------------------------------------------------

COMMANDS = {
    "image": ("build the serving image (docker/Dockerfile)", add_image_arguments, build_command),
    "image-run": ("run the image and wait for /ready", add_run_arguments, start_command),
    "image-smoke": (
        "send sample rows to the running container; compare with onnxruntime",
        add_smoke_arguments,
        smoke_command,
    ),
    "image-stop": ("stop and remove the container by name", add_stop_arguments, stop_command),
}
