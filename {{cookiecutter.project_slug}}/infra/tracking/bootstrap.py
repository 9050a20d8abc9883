"""Users and permissions of the team's MLflow server (MLflow's own `basic-auth` app).

    python bootstrap.py auth-config PATH   write MLflow's auth config file (the server container
                                           runs this before `mlflow server`)
    python bootstrap.py                    create the reader, the writer and the runner, the
                                           project's experiment and registered model, and their grants

Everything comes from the environment (compose passes it from .env). Running it again changes
nothing that is already right, and resets passwords and grants that drifted from .env: it is the
way to rotate the reader's or writer's password.

Why the admin creates the experiment and the registered model: MLflow gives MANAGE on a new
experiment or model to whoever creates it. Created here, before any CI job runs, nobody but the
admin owns them; the writer gets EDIT (log runs, register versions, move aliases; not delete, not
grant), and the reader keeps the server's default READ.

The runner is the user of jobs that run on machines others can inspect (a Ray cluster's jobs carry
their environment, credentials included, to everyone who can read its dashboard): EDIT on the
experiment, so it logs runs, and only READ on the registered model, so it can neither register a
version nor move an alias.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Every signed-in user may read every experiment and model; writing needs a grant. NO_PERMISSIONS
# would hide everything from the reader unless granted one by one, and EDIT/MANAGE would let the
# reader's credentials (which pull requests from any branch can use) write.
DEFAULT_PERMISSION = "READ"
WRITER_PERMISSION = "EDIT"
MIN_PASSWORD = 12  # MLflow refuses shorter passwords
# MLflow's own basic-auth check, with the credentials it verified remembered (basic_auth_cache.py:
# MLflow hashes the password on every request otherwise). compose puts that module on the PYTHONPATH.
AUTHORIZATION_FUNCTION = "basic_auth_cache:authenticate_request_basic_auth_cached"


class SetupError(Exception):
    """A problem the operator fixes in .env or on the server; printed without a traceback."""


def env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SetupError(f"{name} is not set: set it in infra/tracking/.env (see .env.example)")
    return value


def password(name: str, in_dotenv: str | None = None) -> str:
    value = env(name)
    if len(value) < MIN_PASSWORD or value.startswith("change-me"):
        raise SetupError(
            f"{in_dotenv or name} is a placeholder or shorter than {MIN_PASSWORD} characters: "
            "set a real one in .env (e.g. `openssl rand -hex 24`)"
        )
    return value


def write_auth_config(path: Path) -> None:
    """MLflow reads the admin's name and password from MLFLOW_AUTH_ADMIN_USERNAME/PASSWORD itself,
    so this file holds no password of a user; it does hold the auth database's URI, hence 0600."""
    # Refuse to start the server with .env.example's placeholders (MLflow would take the key).
    password("MLFLOW_AUTH_ADMIN_PASSWORD", in_dotenv="MLFLOW_ADMIN_PASSWORD")
    password("MLFLOW_FLASK_SERVER_SECRET_KEY")
    database = env("MLFLOW_AUTH_DATABASE_URI").replace("%", "%%")  # configparser interpolates %
    text = (
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = {database}\n"
        f"authorization_function = {AUTHORIZATION_FUNCTION}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # also when the file was already there
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    print(f"auth config written to {path} (default_permission = {DEFAULT_PERMISSION})")


def ensure_user(auth, username: str, secret: str) -> None:
    from mlflow.exceptions import RestException

    try:
        user = auth.get_user(username)
    except RestException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        auth.create_user(username, secret)
        print(f"user {username}: created")
        return
    auth.update_user_password(username, secret)  # .env is the source of truth
    if user.is_admin:
        auth.update_user_admin(username, False)
        print(f"user {username}: was an admin, no longer is")
    print(f"user {username}: exists, password set from .env")


def bootstrap() -> None:
    # Import here so that `auth-config` runs before the server's own packages are needed.
    import mlflow.server
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = env("MLFLOW_TRACKING_URI")
    admin = env("MLFLOW_ADMIN_USERNAME")
    reader, writer = env("MLFLOW_READER_USERNAME"), env("MLFLOW_WRITER_USERNAME")
    runner = env("MLFLOW_RUNNER_USERNAME")
    if len({admin, reader, writer, runner}) < 4:
        raise SetupError(
            "MLFLOW_ADMIN_USERNAME, MLFLOW_READER_USERNAME, MLFLOW_WRITER_USERNAME and MLFLOW_RUNNER_USERNAME "
            "must be four different users"
        )
    experiment_name, model_name = env("MLFLOW_EXPERIMENT_NAME"), env("MLFLOW_MODEL_NAME")
    secrets = {
        reader: password("MLFLOW_READER_PASSWORD"),
        writer: password("MLFLOW_WRITER_PASSWORD"),
        runner: password("MLFLOW_RUNNER_PASSWORD"),
    }
    # MLflow's clients read the credentials from these variables: act as the admin from here on.
    os.environ["MLFLOW_TRACKING_USERNAME"] = admin
    os.environ["MLFLOW_TRACKING_PASSWORD"] = env("MLFLOW_ADMIN_PASSWORD")

    auth = mlflow.server.get_app_client("basic-auth", tracking_uri=uri)
    try:
        is_admin = auth.get_user(admin).is_admin
    except MlflowException as error:
        if "401" in str(error):  # the server's 401 body is plain text, not an MLflow error
            raise SetupError(
                f"{uri} refused the admin {admin!r}: MLflow sets the admin's password "
                "only on the server's first start, so MLFLOW_ADMIN_PASSWORD must be the "
                "one it was first started with"
            ) from error
        raise
    if not is_admin:
        raise SetupError(f"{admin!r} is not an admin on {uri}: check MLFLOW_ADMIN_USERNAME")
    for username, secret in secrets.items():
        ensure_user(auth, username, secret)

    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        experiment_id = client.create_experiment(experiment_name)
        print(f"experiment {experiment_name}: created (id {experiment_id})")
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":  # its name stays taken until it is purged
            client.restore_experiment(experiment_id)
        print(f"experiment {experiment_name}: exists (id {experiment_id})")
    try:
        client.get_registered_model(model_name)
        print(f"registered model {model_name}: exists")
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(model_name)
        print(f"registered model {model_name}: created")

    for resource_type, resource_id in (("experiment", experiment_id), ("registered_model", model_name)):
        grant(auth, writer, resource_type, resource_id, WRITER_PERMISSION)
        # A grant the reader got some other way (e.g. it created the resource before this ran)
        # would let pull requests write: take it away, leaving the default READ.
        keep_default(auth, reader, resource_type, resource_id)
    grant(auth, runner, "experiment", experiment_id, WRITER_PERMISSION)
    keep_default(auth, runner, "registered_model", model_name)  # runs, never versions or aliases


def keep_default(auth, username: str, resource_type: str, resource_id: str) -> None:
    """No grant beyond the server's default READ on this resource."""
    held = auth.get_user_permission(username, resource_type, resource_id).permission
    if held != DEFAULT_PERMISSION:
        auth.revoke_user_permission(username, resource_type, resource_id)
        print(f"{resource_type} {resource_id}: revoked {username}'s {held}")


def grant(auth, username: str, resource_type: str, resource_id: str, permission: str) -> None:
    """Exactly `permission`, whatever grant the user had before."""
    from mlflow.exceptions import RestException

    try:
        auth.grant_user_permission(username, resource_type, resource_id, permission)
    except RestException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        held = auth.get_user_permission(username, resource_type, resource_id).permission
        if held != permission:
            auth.revoke_user_permission(username, resource_type, resource_id)
            auth.grant_user_permission(username, resource_type, resource_id, permission)
            print(f"{resource_type} {resource_id}: {username} had {held}")
    print(f"{resource_type} {resource_id}: {username} has {permission}")


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["auth-config"] and len(argv) == 2:
            write_auth_config(Path(argv[1]))
        elif not argv:
            bootstrap()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except SetupError as error:
        print(f"bootstrap: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
