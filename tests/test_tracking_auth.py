"""The team tracking stack's users and permissions, for real: `mlflow server --app-name basic-auth`.

The server runs on loopback with the `mlflow server` arguments of the baked compose file (only the
stores, host, port and worker count swapped for local ones), its auth config written by the baked
`infra/tracking/bootstrap.py auth-config` as the container does, and users, experiment, model and
grants made by the same bootstrap the compose stack runs. Then real clients try, with each user's
credentials: MlflowClient, and the project's own commands (`pipeline`, `promote`, `download-onnx`).
The server's cache of verified credentials (`infra/tracking/basic_auth_cache.py`) is checked the same
way: what it saves, and that a changed password, a deleted user or a wrong password is refused at once.
SQLite stands in for PostgreSQL here; test_team_tracking.py covers PostgreSQL.
"""

from __future__ import annotations

import base64
import configparser
import importlib.util
import os
import shlex
import shutil
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import SLUG, cli
from processes import free_port, start, stop, wait_for_http

ADMIN = ("admin", "admin-password-0123")
READER = ("ci-reader", "reader-password-0123")
WRITER = ("ci-writer", "writer-password-0123")
RUNNER = ("ci-runner", "runner-password-0123")
PUBLIC_HOST = "mlflow.example.com"


def require_auth_extra() -> None:
    if importlib.util.find_spec("flask_wtf") is None:
        message = "Flask-WTF is not installed: MLflow's basic-auth app needs it (requirements-test.txt: mlflow[auth])"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def compose_server_arguments(project: Path, env: dict[str, str], local: dict[str, str]) -> list[str]:
    """The compose file's `mlflow server ...` with its variables filled from `env` and the
    options in `local` (e.g. --host) given local values."""
    stack = yaml.safe_load((project / "infra" / "tracking" / "compose.yaml").read_text())
    script = stack["services"]["mlflow"]["command"][-1].replace("$$", "$")
    words = [string.Template(word).substitute(env) for word in shlex.split(script.split("exec ", 1)[1])]
    assert words[:2] == ["mlflow", "server"], script
    for option, value in local.items():
        if option in words:
            words[words.index(option) + 1] = value
        else:
            words += [option, value]
    return [str(Path(sys.executable).parent / "mlflow"), *words[1:]]


class Stack:
    def __init__(self, project: Path, folder: Path):
        self.project, self.folder = project, folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = folder / "mlflow-server.log"
        self.process: subprocess.Popen | None = None
        self.first_bootstrap = ""
        # What compose passes the mlflow and bootstrap services, with local values.
        self.env = {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth" / "basic_auth.ini"),
            "MLFLOW_AUTH_DATABASE_URI": f"sqlite:///{folder / 'auth.db'}",
            "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key-0123456789",
            "MLFLOW_ALLOWED_HOSTS": PUBLIC_HOST,
            "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "MLFLOW_ARTIFACTS_DESTINATION": str(folder / "artifacts"),
            # compose: /opt/tracking, where the image keeps this folder's basic_auth_cache.py.
            "PYTHONPATH": str(project / "infra" / "tracking"),
        }

    def bootstrap_env(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ADMIN_USERNAME": ADMIN[0],
            "MLFLOW_ADMIN_PASSWORD": ADMIN[1],
            "MLFLOW_READER_USERNAME": READER[0],
            "MLFLOW_READER_PASSWORD": READER[1],
            "MLFLOW_WRITER_USERNAME": WRITER[0],
            "MLFLOW_WRITER_PASSWORD": WRITER[1],
            "MLFLOW_RUNNER_USERNAME": RUNNER[0],
            "MLFLOW_RUNNER_PASSWORD": RUNNER[1],
            "MLFLOW_EXPERIMENT_NAME": SLUG,
            "MLFLOW_MODEL_NAME": SLUG,
        }

    def script(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        """infra/tracking/bootstrap.py, with nothing of MLflow's from this process's environment."""
        clean = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
        return subprocess.run(
            [sys.executable, "infra/tracking/bootstrap.py", *args],
            cwd=self.project,
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def bootstrap(self) -> subprocess.CompletedProcess:
        result = self.script(env=self.bootstrap_env())
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def start(self) -> None:
        config = self.script("auth-config", self.env["MLFLOW_AUTH_CONFIG_PATH"], env=self.env)
        assert config.returncode == 0, config.stderr
        command = compose_server_arguments(
            self.project,
            self.env,
            {
                "--host": "127.0.0.1",
                "--port": str(self.port),
                "--workers": "1",
                "--backend-store-uri": self.env["MLFLOW_BACKEND_STORE_URI"],
                "--artifacts-destination": self.env["MLFLOW_ARTIFACTS_DESTINATION"],
            },
        )
        self.process = start(command, self.log, env=self.env, cwd=self.folder)
        wait_for_http(f"{self.uri}/health", timeout=180, process=self.process, log=self.log)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                print(f"\nmlflow server (basic-auth): {server_cpu_seconds(self):.1f} CPU-s in all")
            stop(self.process)

    def credentials(self, user: tuple[str, str] | None) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            **({"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]} if user else {}),
        }

    def cli(self, *args: str, user: tuple[str, str] | None, check: bool = True) -> subprocess.CompletedProcess:
        """The project's own command, as a CI job on main holding `user`'s credentials runs it."""
        return cli(self.project, *args, check=check, GITHUB_REF="refs/heads/main", **self.credentials(user))


def server_cpu_seconds(stack: Stack) -> float:
    """CPU seconds used so far by the server: the `mlflow` command and its uvicorn processes, which
    `start` put in a process group of their own (Linux /proc)."""
    assert stack.process is not None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # the command name may hold spaces
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == stack.process.pid:  # process group
            total += int(fields[11]) + int(fields[12])  # user + system time
    return total / tick


@pytest.fixture(scope="module")
def stack(baked, tmp_path_factory):
    require_auth_extra()
    folder = tmp_path_factory.mktemp("tracking-auth")
    tracking = Stack(shutil.copytree(baked(), folder / SLUG), folder)
    try:
        tracking.start()
        tracking.first_bootstrap = tracking.bootstrap().stdout
        # The writer's CI on main: the real stages, which register a version as `challenger`.
        tracking.cli("pipeline", user=WRITER)
        yield tracking
    finally:
        tracking.stop()


def as_user(stack: Stack, user: tuple[str, str] | None, monkeypatch) -> MlflowClient:
    """A client sending `user`'s credentials (MLflow reads them from the environment per request)."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in stack.credentials(user).items():
        monkeypatch.setenv(name, value)
    return MlflowClient(stack.uri, registry_uri=stack.uri)


def refused(call, status: int) -> str:
    with pytest.raises(MlflowException) as caught:
        call()
    assert f"error code {status}" in str(caught.value), str(caught.value)
    return str(caught.value)


def http_status(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def latest_version(client: MlflowClient) -> str:
    return max((v for v in client.search_model_versions(f"name = '{SLUG}'")), key=lambda v: int(v.version)).version


def test_without_credentials_reads_and_writes_are_refused(stack, monkeypatch):
    experiment_id = as_user(stack, READER, monkeypatch).get_experiment_by_name(SLUG).experiment_id
    client = as_user(stack, None, monkeypatch)
    refused(lambda: client.get_experiment_by_name(SLUG), 401)
    refused(lambda: client.search_model_versions(f"name = '{SLUG}'"), 401)
    refused(lambda: client.get_model_version_by_alias(SLUG, "challenger"), 401)
    refused(lambda: client.create_run(experiment_id), 401)
    refused(lambda: client.set_registered_model_alias(SLUG, "champion", "1"), 401)
    # The artifact proxy too, and the project's commands.
    assert http_status(f"{stack.uri}/api/2.0/mlflow-artifacts/artifacts") == 401
    download = stack.cli("download-onnx", "--version", "1", "--output", "fetched/model.onnx", user=None, check=False)
    assert download.returncode != 0 and "401" in download.stderr


def test_reader_reads_runs_and_registry_but_cannot_register_or_move_an_alias(stack, monkeypatch):
    reader = as_user(stack, READER, monkeypatch)
    experiment_id = reader.get_experiment_by_name(SLUG).experiment_id
    runs = reader.search_runs([experiment_id])
    assert runs and runs[0].data.tags["stage.gate"] == "done"
    challenger = reader.get_model_version_by_alias(SLUG, "challenger")
    assert reader.get_registered_model(SLUG).aliases["challenger"] == challenger.version
    assert reader.get_run(challenger.tags["run_id"]).data.metrics
    # Artifacts through the server's proxy: what a pull request needs to compare or serve a model.
    fetched = stack.cli("download-onnx", "--version", challenger.version, "--output", "reader/model.onnx", user=READER)
    assert (stack.project / "reader" / "model.onnx").stat().st_size > 0, fetched.stdout

    run_id = challenger.tags["run_id"]
    source = reader.get_run(run_id).data.tags["model.uri"]
    model_id = source.removeprefix("models:/")
    refused(lambda: reader.create_model_version(SLUG, source, run_id=run_id, model_id=model_id), 403)
    refused(lambda: reader.set_registered_model_alias(SLUG, "champion", challenger.version), 403)
    refused(lambda: reader.delete_registered_model_alias(SLUG, "challenger"), 403)
    refused(lambda: reader.create_run(experiment_id), 403)  # no runs in the project's experiment
    promote = stack.cli("promote", "--version", challenger.version, "--alias", "champion", user=READER, check=False)
    assert promote.returncode != 0 and "403" in promote.stderr, promote.stderr
    assert "champion" not in reader.get_registered_model(SLUG).aliases


def test_writer_logs_runs_registers_versions_and_moves_the_alias(stack, monkeypatch):
    writer = as_user(stack, WRITER, monkeypatch)
    challenger = writer.get_model_version_by_alias(SLUG, "challenger")
    run = writer.get_run(challenger.tags["run_id"])  # logged by `pipeline` as the writer (fixture)
    assert all(run.data.tags[f"stage.{stage}"] == "done" for stage in ("train", "evaluate", "gate", "export"))

    promote = stack.cli("promote", "--version", challenger.version, "--alias", "champion", user=WRITER)
    assert f"-> {challenger.version}" in promote.stdout
    assert writer.get_model_version_by_alias(SLUG, "champion").version == challenger.version
    # A second version, registered by hand the way `gate` does it, and the alias moved onto it.
    source = run.data.tags["model.uri"]
    again = writer.create_model_version(SLUG, source, run_id=run.info.run_id, model_id=source.removeprefix("models:/"))
    writer.set_registered_model_alias(SLUG, "champion", again.version)
    assert latest_version(writer) == again.version
    assert writer.get_model_version_by_alias(SLUG, "champion").version == again.version


def test_runner_logs_runs_but_cannot_register_or_move_an_alias(stack, monkeypatch):
    """The Ray jobs' user (its password is on the cluster's dashboard): runs in the project's
    experiment, and nothing in the registry."""
    runner = as_user(stack, RUNNER, monkeypatch)
    experiment_id = runner.get_experiment_by_name(SLUG).experiment_id
    run = runner.create_run(experiment_id, tags={"mlflow.runName": "from-a-ray-job"})
    runner.log_metric(run.info.run_id, "accuracy", 0.9)
    runner.log_text(run.info.run_id, "trained on the cluster", "notes.txt")  # through the artifact proxy
    runner.set_terminated(run.info.run_id)
    assert runner.get_run(run.info.run_id).data.metrics == {"accuracy": 0.9}

    challenger = runner.get_model_version_by_alias(SLUG, "challenger")
    source = runner.get_run(challenger.tags["run_id"]).data.tags["model.uri"]
    refused(
        lambda: runner.create_model_version(
            SLUG, source, run_id=challenger.tags["run_id"], model_id=source.removeprefix("models:/")
        ),
        403,
    )
    refused(lambda: runner.set_registered_model_alias(SLUG, "champion", challenger.version), 403)
    refused(lambda: runner.delete_registered_model_alias(SLUG, "challenger"), 403)
    promote = stack.cli("promote", "--version", challenger.version, "--alias", "champion", user=RUNNER, check=False)
    assert promote.returncode != 0 and "403" in promote.stderr, promote.stderr
    assert runner.get_model_version_by_alias(SLUG, "challenger").version == challenger.version


def test_bootstrap_is_idempotent_and_takes_back_what_the_reader_should_not_hold(stack, monkeypatch):
    import mlflow.server

    as_user(stack, ADMIN, monkeypatch)
    auth = mlflow.server.get_app_client("basic-auth", tracking_uri=stack.uri)
    experiment_id = MlflowClient(stack.uri).get_experiment_by_name(SLUG).experiment_id
    for created in (
        f"user {READER[0]}: created",
        f"user {WRITER[0]}: created",
        f"user {RUNNER[0]}: created",
        f"experiment {SLUG}: created",
        f"registered model {SLUG}: created",
    ):
        assert created in stack.first_bootstrap, stack.first_bootstrap
    auth.grant_user_permission(READER[0], "registered_model", SLUG, "MANAGE")  # drift to undo
    auth.grant_user_permission(RUNNER[0], "registered_model", SLUG, "EDIT")  # would let Ray jobs register
    second = stack.bootstrap()
    assert "exists" in second.stdout and f"revoked {READER[0]}'s MANAGE" in second.stdout, second.stdout
    assert f"revoked {RUNNER[0]}'s EDIT" in second.stdout, second.stdout
    for resource_type, resource_id in (("experiment", experiment_id), ("registered_model", SLUG)):
        assert auth.get_user_permission(WRITER[0], resource_type, resource_id).permission == "EDIT"
        assert auth.get_user_permission(READER[0], resource_type, resource_id).permission == "READ"
    assert auth.get_user_permission(RUNNER[0], "experiment", experiment_id).permission == "EDIT"
    assert auth.get_user_permission(RUNNER[0], "registered_model", SLUG).permission == "READ"
    assert not any(auth.get_user(user[0]).is_admin for user in (READER, WRITER, RUNNER))


def test_bootstrap_refuses_placeholder_passwords_and_a_wrong_admin_password(stack):
    placeholder = stack.script(env={**stack.bootstrap_env(), "MLFLOW_READER_PASSWORD": "change-me"})
    assert placeholder.returncode == 1 and "MLFLOW_READER_PASSWORD" in placeholder.stderr
    wrong = stack.script(env={**stack.bootstrap_env(), "MLFLOW_ADMIN_PASSWORD": "not-the-first-one-0123"})
    assert wrong.returncode == 1 and "first start" in wrong.stderr, wrong.stderr
    # The server container's first step refuses .env.example's values before MLflow could take them.
    config = stack.script(
        "auth-config",
        str(stack.folder / "unused.ini"),
        env={**stack.env, "MLFLOW_FLASK_SERVER_SECRET_KEY": "change-me"},
    )
    assert config.returncode == 1 and "MLFLOW_FLASK_SERVER_SECRET_KEY" in config.stderr
    assert not (stack.folder / "unused.ini").exists()


def test_only_the_allowed_host_names_are_answered(stack):
    """--allowed-hosts from .env: the public name gets through to authentication, others do not."""
    api = f"{stack.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert http_status(api, Host=PUBLIC_HOST) == 401  # past the host check, stopped by auth
    assert http_status(api, Host="attacker.example.net") == 403
    assert http_status(api) == 401  # 127.0.0.1:<port>, as the published port and health check use


def test_auth_config_file_is_private_and_holds_no_user_password(stack):
    config = Path(stack.env["MLFLOW_AUTH_CONFIG_PATH"])
    assert config.stat().st_mode & 0o077 == 0
    text = config.read_text()
    assert "default_permission = READ" in text
    assert all(secret not in text for secret in (ADMIN[1], READER[1], WRITER[1], RUNNER[1]))


# --- The server's cache of verified credentials (infra/tracking/basic_auth_cache.py) ---------------

API = "/api/2.0/mlflow/experiments/search?max_results=1"


def basic(user: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


def answer(stack: Stack, user: tuple[str, str]) -> int:
    return http_status(f"{stack.uri}{API}", Authorization=basic(user))


def admin_client(stack: Stack, monkeypatch):
    import mlflow.server

    as_user(stack, ADMIN, monkeypatch)
    return mlflow.server.get_app_client("basic-auth", tracking_uri=stack.uri)


def another_server_store(stack: Stack):
    """MLflow's auth store on the server's database, opened from this process: what another worker
    of the same server (compose runs several) or another replica sees and changes."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(stack.env["MLFLOW_AUTH_DATABASE_URI"])
    return store


def test_a_verified_password_is_not_hashed_again_on_every_request(stack):
    """MLflow hashes the password (scrypt, slow on purpose) on every request; the server remembers a
    credential it verified, so repeated requests cost it far less CPU than a hash check each."""
    from werkzeug.security import check_password_hash, generate_password_hash

    stored = generate_password_hash(READER[1])  # werkzeug's default method, the one MLflow stores
    began = time.process_time()
    assert check_password_hash(stored, READER[1])
    one_check = time.process_time() - began
    assert answer(stack, READER) == 200  # verified now if not before
    requests = 30
    spent = server_cpu_seconds(stack)
    for _ in range(requests):
        assert answer(stack, READER) == 200
    spent = server_cpu_seconds(stack) - spent
    assert spent < requests * one_check / 2, (
        f"{requests} requests cost the server {spent:.2f} CPU-s; one password hash check costs {one_check:.3f} s"
    )


def test_a_changed_password_refuses_the_old_one_at_once(stack, monkeypatch):
    auth = admin_client(stack, monkeypatch)
    old, new = ("cache-rotated", "first-password-0123"), ("cache-rotated", "second-password-0123")
    auth.create_user(*old)
    assert answer(stack, old) == answer(stack, old) == 200  # verified, then remembered
    auth.update_user_password(*new)
    assert answer(stack, old) == 401
    assert answer(stack, new) == answer(stack, new) == 200
    # Changed elsewhere (another worker, another replica): this worker never saw the change.
    another_server_store(stack).update_user(old[0], password=old[1])
    assert answer(stack, new) == 401
    assert answer(stack, old) == 200


def test_a_deleted_or_unknown_user_is_refused(stack, monkeypatch):
    auth = admin_client(stack, monkeypatch)
    for user, delete in (
        (("cache-deleted", "deleted-password-0123"), auth.delete_user),
        (("cache-deleted-elsewhere", "deleted-password-0123"), another_server_store(stack).delete_user),
    ):
        auth.create_user(*user)
        assert answer(stack, user) == answer(stack, user) == 200
        delete(user[0])
        assert answer(stack, user) == 401, user
    assert answer(stack, ("cache-never-created", "unknown-password-0123")) == 401


def test_a_wrong_password_for_a_remembered_user_is_refused(stack):
    assert answer(stack, WRITER) == answer(stack, WRITER) == 200
    for wrong in ("", WRITER[1][:-1], WRITER[1] + "x", WRITER[1].upper(), READER[1]):
        assert answer(stack, (WRITER[0], wrong)) == 401, wrong
    assert answer(stack, (READER[0], WRITER[1])) == 401  # another user's password
    assert answer(stack, WRITER) == 200  # a refusal forgets nothing that was right


def test_the_container_imports_the_authorization_function_tested_here(stack):
    """The auth config names a function of basic_auth_cache.py; compose's PYTHONPATH is the folder
    where the Dockerfile copies that file, as this test's server had infra/tracking on its path."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(stack.env["MLFLOW_AUTH_CONFIG_PATH"])
    module, function = config["mlflow"]["authorization_function"].split(":")
    tracking = stack.project / "infra" / "tracking"
    spec = importlib.util.spec_from_file_location(module, tracking / f"{module}.py")
    assert spec is not None and spec.loader is not None, f"no {module}.py in infra/tracking"
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    assert callable(getattr(loaded, function))
    folder = yaml.safe_load((tracking / "compose.yaml").read_text())["services"]["mlflow"]["environment"]["PYTHONPATH"]
    assert f"COPY {module}.py {folder}/{module}.py" in (tracking / "Dockerfile").read_text()
