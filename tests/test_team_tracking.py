"""A baked project against a shared MLflow server on PostgreSQL: the real thing, on loopback.

Stages run as separate processes, as they do in separate CI jobs; everything is read back from
the server with MlflowClient.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import onnx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import PACKAGE, SLUG, cli, project_env
from processes import start, stop, wait_for_http
from servers import MlflowServer, Postgres, postgres_bin

STAGES = ["validate", "train", "evaluate", "gate", "export", "register"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (scripts/system-packages.sh installs it)")
        pytest.skip("PostgreSQL binaries not found under /usr/lib/postgresql")
    folder = tmp_path_factory.mktemp("team")
    database = Postgres(Path(tempfile.mkdtemp(prefix="mlops-postgres-"))).start()
    tracking = MlflowServer(database.url, folder)
    try:
        tracking.start()
        print(
            f"\nPostgreSQL initdb+start+createdb: {database.startup_seconds:.1f} s; "
            f"mlflow server start: {tracking.startup_seconds[0]:.1f} s"
        )
        yield tracking
    finally:
        tracking.stop()
        database.stop()
        print(f"mlflow server start-up times: {', '.join(f'{s:.1f} s' for s in tracking.startup_seconds)}")


def client_for(server: MlflowServer) -> MlflowClient:
    return MlflowClient(server.uri, registry_uri=server.uri)


def copy_project(baked, tmp_path, name: str, **config_changes) -> object:
    project = shutil.copytree(baked(), tmp_path / name)
    if config_changes:
        settings = yaml.safe_load((project / "config.yaml").read_text())
        for section, values in config_changes.items():
            settings[section] |= values
        (project / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return project


def run_id_of(project) -> str:
    return json.loads((project / "outputs" / "run.json").read_text())["run_id"]


def test_restart_between_train_and_gate_loses_nothing_and_one_run_holds_everything(server, baked, tmp_path):
    project = copy_project(baked, tmp_path, "restart")
    for stage in STAGES[:3]:
        cli(project, stage, MLFLOW_TRACKING_URI=server.uri)
    run_id = run_id_of(project)
    server.restart()
    for stage in STAGES[3:]:
        cli(project, stage, MLFLOW_TRACKING_URI=server.uri)

    client = client_for(server)
    run = client.get_run(run_id)
    assert all(run.data.tags[f"stage.{stage}"] == "done" for stage in STAGES)
    assert run.data.params["framework"] == "sklearn" and "data.sha256" in run.data.params
    assert {
        "train.accuracy",
        "test.roc_auc",
        "fairness.sex.demographic_parity_difference",
        "export.parity_max_abs_diff",
    } <= set(run.data.metrics)
    artifacts = {item.path for item in client.list_artifacts(run_id)}
    assert {"validation", "plots", "gate", "onnx", "schema.json"} <= artifacts
    assert "split" not in artifacts  # real rows: a reader of runs gets their digest, not the rows
    onnx_file = client.download_artifacts(run_id, "onnx/model.onnx", str(tmp_path))
    metadata = {p.key: p.value for p in onnx.load(onnx_file).metadata_props}
    assert metadata["mlops.run_id"] == run_id
    # The model itself: a logged model whose source is this run.
    model_id = run.data.tags["model.uri"].removeprefix("models:/")
    assert client.get_logged_model(model_id).source_run_id == run_id
    # Nothing was written to a local store: the server holds it all.
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()

    version = client.get_model_version_by_alias(SLUG, "challenger")
    assert version.tags["run_id"] == run_id


def test_two_pipelines_at_once_land_in_two_runs(server, baked, tmp_path):
    projects = [copy_project(baked, tmp_path, f"team-{seed}", split={"seed": seed}) for seed in (11, 12)]
    running = [
        subprocess.Popen(
            [sys.executable, "-m", PACKAGE, "pipeline"],
            cwd=project,
            env=project_env(project, MLFLOW_TRACKING_URI=server.uri),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for project in projects
    ]
    for process in running:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-3000:]

    client = client_for(server)
    runs = [client.get_run(run_id_of(project)) for project in projects]
    assert runs[0].info.run_id != runs[1].info.run_id
    for run, seed in zip(runs, (11, 12), strict=True):
        assert run.data.params["split.seed"] == str(seed)  # each run holds its own pipeline's values
        assert all(run.data.tags[f"stage.{stage}"] == "done" for stage in STAGES)
        onnx_file = client.download_artifacts(run.info.run_id, "onnx/model.onnx", str(tmp_path / run.info.run_id))
        metadata = {p.key: p.value for p in onnx.load(onnx_file).metadata_props}
        assert metadata["mlops.run_id"] == run.info.run_id
    versions = {v.tags["run_id"]: v for v in client.search_model_versions(f"name = '{SLUG}'")}
    assert {run.info.run_id for run in runs} <= set(versions)


def test_failing_model_is_registered_nowhere(server, baked, tmp_path):
    project = copy_project(baked, tmp_path, "failing")
    settings = yaml.safe_load((project / "config.yaml").read_text())
    settings["gate"]["thresholds"]["test.roc_auc"] = {"min": 0.999}
    (project / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    for stage in STAGES[:3]:
        cli(project, stage, MLFLOW_TRACKING_URI=server.uri)
    gate = cli(project, "gate", check=False, MLFLOW_TRACKING_URI=server.uri)
    assert gate.returncode == 1 and "nothing was registered" in gate.stderr

    client = client_for(server)
    run_id = run_id_of(project)
    assert client.get_run(run_id).data.tags["gate.verdict"] == "failed"
    assert all(v.tags.get("run_id") != run_id for v in client.search_model_versions(f"name = '{SLUG}'"))
    for alias in ("challenger", "champion"):
        try:
            assert client.get_model_version_by_alias(SLUG, alias).tags["run_id"] != run_id
        except Exception as error:  # noqa: BLE001 - no such alias at all is fine too
            assert "not found" in str(error).lower()


def test_compose_stack_uses_only_variables_from_env_example(baked):
    """Static only: no container engine with registry access here to run the stack itself.
    test_tracking_auth.py runs the mlflow service's own `mlflow server` arguments and bootstrap.py."""
    folder = baked() / "infra" / "tracking"
    stack = yaml.safe_load((folder / "compose.yaml").read_text())
    services = stack["services"]
    assert {"postgres", "minio", "mlflow", "bootstrap"} <= set(services)
    env_example = dict(
        line.split("=", 1)
        for line in (folder / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", (folder / "compose.yaml").read_text()))
    assert used and used <= set(env_example), f"not in .env.example: {used - set(env_example)}"
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "USER")):
                assert str(value).startswith("${"), f"{name}.{key} is written into compose.yaml"

    # Exposure: only MLflow is published, on the address .env names, loopback by default.
    assert [name for name, service in services.items() if service.get("ports")] == ["mlflow"]
    assert services["mlflow"]["ports"] == ["${MLFLOW_BIND:-127.0.0.1}:${MLFLOW_PORT:-5000}:5000"]
    assert env_example["MLFLOW_BIND"] == "127.0.0.1"
    # Authentication and host names, in the one shell line the container runs.
    script = services["mlflow"]["command"][-1]
    assert "\n" not in script.strip(), (
        "a more-indented line of a folded scalar keeps its newline: the shell ends the command there"
    )
    assert "--app-name basic-auth" in script and "bootstrap.py auth-config" in script
    assert re.search(r'--allowed-hosts "\$\$MLFLOW_ALLOWED_HOSTS,', script), script
    environment = services["mlflow"]["environment"]
    assert {
        "MLFLOW_AUTH_CONFIG_PATH",
        "MLFLOW_AUTH_DATABASE_URI",
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "MLFLOW_ALLOWED_HOSTS",
    } <= set(environment)
    # The bootstrap service: after the server is healthy, with every variable bootstrap.py reads.
    bootstrap = services["bootstrap"]
    assert bootstrap["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "python /opt/tracking/bootstrap.py" in bootstrap["command"][-1]
    script_source = (folder / "bootstrap.py").read_text()
    for function, service in (("bootstrap", "bootstrap"), ("write_auth_config", "mlflow")):
        missing = variables_read(script_source, function) - set(services[service]["environment"])
        assert not missing, f"bootstrap.py {function}() reads {missing}: not passed to the {service} service"


def test_the_tracking_server_image_installs_nothing_at_start(baked, tmp_path):
    """The mlflow and bootstrap containers run an image built from infra/tracking/Dockerfile, whose
    packages are pinned with every file's hash; no service's command installs anything. Static for
    compose (no engine with registry access here); the requirements themselves are installed for real
    (from PyPI, into a scratch folder) under --require-hashes."""
    folder = baked() / "infra" / "tracking"
    services = yaml.safe_load((folder / "compose.yaml").read_text())["services"]
    for name, service in services.items():
        started = json.dumps([service.get("command"), service.get("entrypoint")])
        assert not re.search(r"\b(pip|uv|apt-get|apk)\b.{0,20}\binstall\b", started), f"{name} installs at start"
    assert services["mlflow"]["build"] == services["bootstrap"]["build"] == "."
    assert services["mlflow"]["image"] == services["bootstrap"]["image"]
    dockerfile = (folder / "Dockerfile").read_text()
    assert "--require-hashes -r /opt/tracking/requirements.txt" in dockerfile and "pip check" in dockerfile
    check = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(folder / "Dockerfile")], text=True, capture_output=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    pins = [line for line in (folder / "requirements.txt").read_text().splitlines() if line and line[0].isalnum()]
    assert pins and all(re.fullmatch(r"[a-z0-9-]+==[\w.]+ \\", line) for line in pins), pins
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--target",
            str(tmp_path / "t"),
            "-r",
            str(folder / "requirements.txt"),
        ],
        text=True,
        capture_output=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert {"psycopg2", "boto3", "flask_wtf"} <= {path.name for path in (tmp_path / "t").iterdir()}


def variables_read(source: str, function: str) -> set[str]:
    """The environment variables `function` of bootstrap.py reads through its env()/password()."""
    body = next(node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef) and node.name == function)
    return {
        call.args[0].value
        for call in ast.walk(body)
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) in ("env", "password")
    }


def test_make_tracking_server_starts_a_local_server(baked, tmp_path):
    project = shutil.copytree(baked(), tmp_path / SLUG)
    process = start(
        ["make", "tracking-server", f"PYTHON={sys.executable}"],
        tmp_path / "server.log",
        env=project_env(project),
        cwd=project,
    )
    try:
        wait_for_http("http://127.0.0.1:5000/health", timeout=90, process=process, log=tmp_path / "server.log")
    finally:
        stop(process)
    assert (project / ".mlflow-server" / "mlflow.db").is_file()
