"""`tune` and `train` as a job on a Ray cluster: submitted from here, the run id read back into outputs/.

With $RAY_ADDRESS (or --ray-address) set to a cluster's job endpoint (http://<head>:8265), the stage
command submits itself as a Ray job instead of running here: the project folder is the job's working
directory (.gitignore'd files and the local stores stay behind), the package goes as a py_module,
and the tracking variables and the commit travel in the job's environment. The job runs the same
command on the cluster and prints what the stage wrote to outputs/ as marker lines; the submitter
reads them back from the job's log into its own outputs/, so `evaluate`, `gate` and `export` attach
to the run the cluster trained, as after a local `train`.

Authentication: a cluster with token authentication (Ray's default) takes the token from
$RAY_AUTH_TOKEN (or the file $RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token).

The job's tracking user: Ray 2.60 has no secret store for jobs, and a job's runtime_env (its
environment variables included) is shown to everyone who can read the cluster's dashboard or job
API. So the job never gets the submitter's own credentials (on main, the registry writer's): it gets
the runs-only user's, from $RAY_JOB_MLFLOW_USERNAME / $RAY_JOB_MLFLOW_PASSWORD (or
$RAY_JOB_MLFLOW_TOKEN), which can log runs and cannot register a version or move an alias
(infra/tracking/bootstrap.py, MLFLOW_RUNNER_USERNAME). A submitter holding credentials but none for
the job is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from .. import lineage
from ..config import Config
from ..errors import CheckFailed, UsageError

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]
# What the job may hand back: outputs/ files of the stages it ran, by name (never a path from the log).
HANDED_BACK = (lineage.RUN_FILE, lineage.VALIDATION_FILE, lineage.TUNE_FILE)
MARKER = "mlops-output"
MARKER_LINE = re.compile("^" + MARKER + r" ([\w.-]+) (\{.*\})$", re.MULTILINE)
# Never sent: the local stores and what runs here produced (besides what .gitignore lists, which Ray skips too).
EXCLUDES = [".venv/", ".git/", "mlruns/", "mlflow.db", "outputs/", ".mlflow-server/", "mlartifacts/"]
# The job's environment: the tracking server, the runs-only user's credentials, and what lineage.py reads.
PASSED_ON = ("MLFLOW_TRACKING_URI",)
# The job's MLflow variable <- the submitter's variable holding the runs-only user's value.
JOB_CREDENTIALS = {
    "MLFLOW_TRACKING_USERNAME": "RAY_JOB_MLFLOW_USERNAME",
    "MLFLOW_TRACKING_PASSWORD": "RAY_JOB_MLFLOW_PASSWORD",
    "MLFLOW_TRACKING_TOKEN": "RAY_JOB_MLFLOW_TOKEN",
}
AGENT_WAIT_SECONDS = 90.0
PASSED_ON_IF_SET = ("KERAS_BACKEND", "MLFLOW_REGISTRY_URI")


def address(flag: str | None) -> str | None:
    """The cluster to submit to: --ray-address, else $RAY_ADDRESS; None inside a job (it runs here)."""
    if os.environ.get(lineage.IN_RAY_JOB):
        return None
    return flag or os.environ.get("RAY_ADDRESS") or None


def check_tracking(config: Config) -> str:
    """The tracking server the job records into: a run in the job's own store would be lost with it."""
    from .. import tracking  # imports MLflow: only when submitting

    uri = tracking.tracking_uri(config)
    if uri == tracking.embedded_uri(config) or uri.startswith(("sqlite:", "file:", "/")):
        raise UsageError(
            f"a Ray job cannot record into the local store ({uri}): it runs on the cluster, whose working "
            "directory is deleted after the job. Set MLFLOW_TRACKING_URI to the team's tracking server "
            "(and MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD), reachable from the cluster"
        )
    return uri


def job_credentials(environ: dict[str, str]) -> dict[str, str]:
    """The runs-only user's credentials under MLflow's names; refused when only the submitter's own exist."""
    given = {name: environ[source] for name, source in JOB_CREDENTIALS.items() if environ.get(source)}
    own = [name for name in JOB_CREDENTIALS if environ.get(name)]
    if own and not given:
        raise UsageError(
            f"a Ray job would carry this process's own {' / '.join(own)}, which the cluster's dashboard and job "
            "API show to all who can read them: set RAY_JOB_MLFLOW_USERNAME / RAY_JOB_MLFLOW_PASSWORD (or "
            "RAY_JOB_MLFLOW_TOKEN) to the runs-only user (infra/tracking: MLFLOW_RUNNER_USERNAME)"
        )
    if own and environ.get("MLFLOW_TRACKING_USERNAME") == given.get("MLFLOW_TRACKING_USERNAME"):
        raise UsageError(
            f"RAY_JOB_MLFLOW_USERNAME is this process's own user ({environ['MLFLOW_TRACKING_USERNAME']}): "
            "the job needs the runs-only user, which cannot register a version or move an alias"
        )
    return given


def runtime_env(config: Config, environ: dict[str, str]) -> dict[str, Any]:
    """The job's runtime environment, built from the project."""
    env_vars = {name: environ[name] for name in PASSED_ON if environ.get(name)}
    env_vars |= job_credentials(environ)
    env_vars |= {name: environ[name] for name in PASSED_ON_IF_SET if environ.get(name)}
    env_vars |= {
        # lineage.git_sha and source_ref: the cluster has no checkout, so the commit and ref go along.
        "GITHUB_SHA": lineage.git_sha(config.root),
        "GITHUB_REF": lineage.source_ref(),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        lineage.IN_RAY_JOB: "1",
    }
    env: dict[str, Any] = {
        "working_dir": str(config.root),
        "py_modules": [str(PACKAGE)],
        "excludes": EXCLUDES + list(config.ray.excludes),
        "env_vars": env_vars,
    }
    if config.ray.pip:
        env["pip"] = list(config.ray.pip)
    return env


def entrypoint(command: str, config_file: Path) -> str:
    # `python` is the cluster's interpreter (its image holds the project's dependencies, or ray.pip adds them).
    return f"python -m {PACKAGE.name} {command} --config {config_file.name}"


def hand_back(config: Config) -> None:
    """Inside a job, after the stage: what it wrote to outputs/, as marker lines on stdout for the submitter."""
    for name in HANDED_BACK:
        path = config.outputs / name
        if path.is_file():
            print(f"{MARKER} {name} {json.dumps(json.loads(path.read_text()), separators=(',', ':'))}", flush=True)


def handed_back(logs: str) -> dict[str, dict]:
    """The outputs/ files a job printed (the last of each name), refusing any name not in HANDED_BACK."""
    found: dict[str, dict] = {}
    for name, value in MARKER_LINE.findall(logs):
        if name not in HANDED_BACK:
            raise CheckFailed(f"the Ray job printed an output named {name!r}, not one of {', '.join(HANDED_BACK)}")
        found[name] = json.loads(value)
    return found


def submit(config: Config, config_file: Path, command: str, cluster: str, data_given: bool) -> None:
    """Run `command` as a Ray job on `cluster`, its log streamed here; its outputs land in outputs/."""
    if data_given:
        raise UsageError(
            "--data / --target cannot go to a Ray job (the file would not be on the cluster): put the table in "
            "the project folder and name it in config.yaml's data.path"
        )
    uri = check_tracking(config)
    try:
        from ray.job_submission import JobStatus, JobSubmissionClient
    except ModuleNotFoundError as error:
        raise UsageError(f"submitting to a Ray cluster needs Ray ({error.name}): pip install -e '.[ray]'") from error
    try:
        client = JobSubmissionClient(cluster)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UsageError(
            f"cannot reach the Ray cluster at {cluster} ($RAY_ADDRESS / --ray-address: its job endpoint, "
            f"http://<head>:8265; a token from $RAY_AUTH_TOKEN when it asks for one): {error}"
        ) from error
    job = f"{config.tracking.model_name}-{command}-{uuid.uuid4().hex[:8]}"
    submit_when_ready(client, job, entrypoint(command, config_file), runtime_env(config, dict(os.environ)))
    log.info("submitted %s as Ray job %s to %s (tracking: %s)", command, job, cluster, uri)
    follow(client, job, config.ray.timeout_minutes * 60)
    info = client.get_job_info(job)
    logs = client.get_job_logs(job)  # whole, once ended: the markers are read from here, not from the stream
    if info.status != JobStatus.SUCCEEDED:
        raise CheckFailed(f"Ray job {job} {info.status.value}: {info.message or 'see its log above'}")
    outputs = handed_back(logs)
    if command == "train" and lineage.RUN_FILE not in outputs:
        raise CheckFailed(f"Ray job {job} succeeded but printed no {lineage.RUN_FILE}: did its train stage finish?")
    config.outputs.mkdir(parents=True, exist_ok=True)
    for name, value in outputs.items():
        (config.outputs / name).write_text(json.dumps(value, indent=2) + "\n")
    if lineage.RUN_FILE in outputs:
        log.info("Ray job %s recorded run %s", job, outputs[lineage.RUN_FILE]["run_id"])


def submit_when_ready(
    client: Any, job: str, command: str, env: dict[str, Any], wait: float = AGENT_WAIT_SECONDS
) -> None:
    """Submit, waiting out a head whose job agent is not up yet (a cluster just started or scaled up)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            client.submit_job(entrypoint=command, runtime_env=env, submission_id=job)
            return
        except RuntimeError as error:
            if "No available agent" not in str(error) or time.monotonic() > deadline:
                raise CheckFailed(f"the Ray cluster refused job {job}: {error}") from error
            time.sleep(1.0)


def follow(client: Any, job: str, timeout: float) -> None:
    """The job's log echoed to stderr as it comes, until the job ends; stopped past `timeout` seconds."""

    async def tail() -> None:
        async for lines in client.tail_job_logs(job):
            sys.stderr.write(lines)

    started = time.monotonic()
    try:
        return asyncio.run(asyncio.wait_for(tail(), timeout))
    except TimeoutError as error:
        client.stop_job(job)
        raise CheckFailed(
            f"Ray job {job} ran longer than ray.timeout_minutes ({timeout / 60:.0f}) and was stopped "
            f"after {time.monotonic() - started:.0f} s"
        ) from error
