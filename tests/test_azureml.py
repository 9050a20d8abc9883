"""deploy_target=azureml, checked offline: the endpoint and deployment YAML through azure-ai-ml's own
loaders and validation, a broken file failing with the SDK's message, the settings agreeing with the
server's, the release wiring, the probe script against the project's real server, the project's own
traffic tests. The workflows' linters run in test_workflows.py; Azure itself is not reachable here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from marshmallow.exceptions import ValidationError

from conftest import PACKAGE, SLUG, project_env, run
from processes import free_port, start, stop, wait_for_http

# azure-ai-ml 1.35.2's schemas use marshmallow features deprecated for marshmallow 4: hundreds of
# warnings at import and per load that say nothing about the files checked here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from azure.ai.ml import load_online_deployment, load_online_endpoint
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint
    from azure.ai.ml.exceptions import ValidationException
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
DIGEST = "sha256:" + "ab" * 32
# What the deploy workflow passes to `az ml online-deployment create --set` (az applies it the same way).
OVERRIDES = [
    {"name": "green"},
    {"endpoint_name": f"{SLUG}-staging"},
    {"environment.image": f"myregistry.azurecr.io/{SLUG}@{DIGEST}"},
]
TARGETS = f"src/{PACKAGE}/targets"
AZUREML = f"{TARGETS}/azureml"
# Each target is its folder, its tests' folder and its one CI file (the post-generation hook's rule).
K8S_ONLY = [f"{TARGETS}/kubernetes", ".github/actions/deploy-kubernetes"]
AZUREML_ONLY = [AZUREML, "tests/targets/azureml", ".github/workflows/_deploy-azureml.yml"]
SHARED = [f"{TARGETS}/__init__.py", f"{TARGETS}/smoke-request.json"]


@pytest.fixture(scope="module")
def project(baked):
    return baked(deploy_target="azureml")


def test_each_target_keeps_only_its_own_files(project, baked):
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".yml", ".yaml", ".md", ".sh", ".json", ".toml"}:
            text = path.read_text()
            assert "{%" not in text and "cookiecutter." not in text, f"unrendered Jinja in {path}"
    assert [path for path in K8S_ONLY if (project / path).exists()] == []
    assert [path for path in [*AZUREML_ONLY, *SHARED] if not (project / path).exists()] == []
    default = baked()
    assert [path for path in AZUREML_ONLY if (default / path).exists()] == []
    assert [path for path in [*K8S_ONLY, *SHARED] if not (default / path).exists()] == []
    assert "azureml" not in (default / "src" / PACKAGE / "cli.py").read_text()


def test_the_config_refuses_triton_which_the_endpoint_cannot_probe(project, tmp_path):
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["serve"]["server"] = "triton"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copytree(project / "data", tmp_path / "data")
    code = f"from {PACKAGE}.config import load; load(__import__('pathlib').Path({str(tmp_path / 'config.yaml')!r}))"
    result = run(project, "-c", code, check=False)
    assert result.returncode != 0
    assert "serve.server" in result.stderr and "deploy_target=kubernetes" in result.stderr, result.stderr[-2000:]


def test_endpoint_loads_and_validates_with_the_sdk(project):
    endpoint = load_online_endpoint(project / AZUREML / "endpoint.yml")
    assert isinstance(endpoint, ManagedOnlineEndpoint)
    assert endpoint.auth_mode == "aml_token" and not endpoint.traffic  # the workflow owns the traffic
    # What `create` sends: the SDK checks the name and identity while building it.
    rest = endpoint._to_rest_online_endpoint(location="westeurope").as_dict()
    assert rest["properties"]["authMode"] == "AMLToken" and rest["identity"]["type"] == "SystemAssigned"


def test_deployment_loads_and_validates_as_the_workflow_sets_it(project):
    deployment = load_online_deployment(project / AZUREML / "deployment.yml", params_override=OVERRIDES)
    assert isinstance(deployment, ManagedOnlineDeployment)
    deployment._validate()  # the entity's own checks: name rules, managed scale settings
    rest = deployment._to_rest_object(location="westeurope").as_dict()["properties"]
    environment = deployment.environment._to_rest_object().as_dict()["properties"]
    assert (deployment.name, deployment.endpoint_name) == ("green", f"{SLUG}-staging")
    assert environment["image"] == f"myregistry.azurecr.io/{SLUG}@{DIGEST}"

    # The server's own routes and port, and Azure's limits consistent with the server's (its defaults).
    settings = json.loads(
        run(
            project,
            "-c",
            f"import dataclasses, json; from {PACKAGE}.serving.settings import Settings; "
            "print(json.dumps(dataclasses.asdict(Settings()), default=str))",
        ).stdout
    )
    routes = environment["inferenceConfig"]
    assert {name: (route["path"], route["port"]) for name, route in routes.items()} == {
        "livenessRoute": ("/health", settings["port"]),
        "readinessRoute": ("/ready", settings["port"]),
        "scoringRoute": ("/predict", settings["port"]),
    }
    assert "PORT=8000" in (project / "docker" / "Dockerfile").read_text()
    timeout_s = deployment.request_settings.request_timeout_ms / 1000
    assert settings["header_timeout"] + settings["body_timeout"] < timeout_s <= 180  # 180 s: Azure's ceiling
    assert deployment.request_settings.max_concurrent_requests_per_instance < settings["max_connections"]
    assert float(rest["environmentVariables"]["KEEP_ALIVE_TIMEOUT"]) > settings["keep_alive_timeout"]

    # The checked-in image is the placeholder nobody can pull; an ill-named slot is refused by the SDK.
    placeholder = load_online_deployment(project / AZUREML / "deployment.yml")
    assert placeholder.environment.image.endswith("@sha256:" + "0" * 64)
    badly_named = load_online_deployment(project / AZUREML / "deployment.yml", params_override=[{"name": "x"}])
    with pytest.raises(ValidationException, match="must be at least 3 and at most 32 characters"):
        badly_named._validate()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda doc: doc.update(instance_counts=2), '"instance_counts": [\n    "Unknown field."'),
        (lambda doc: doc.update(instance_count="two"), '"instance_count": [\n    "Not a valid integer."'),
        (
            lambda doc: doc["request_settings"].update(request_timeout=45),
            '"request_timeout": [\n      "Unknown field."',
        ),
    ],
    ids=["unknown-key", "wrong-type", "unknown-nested-key"],
)
def test_a_broken_deployment_fails_with_the_sdks_message(project, tmp_path, change, message):
    document = yaml.safe_load((project / AZUREML / "deployment.yml").read_text())
    change(document)
    broken = tmp_path / "deployment.yml"
    broken.write_text(yaml.safe_dump(document))
    with pytest.raises(ValidationError) as failure:
        load_online_deployment(broken)
    assert "Validation for ManagedOnlineDeploymentSchema failed" in str(failure.value)
    assert message in str(failure.value)


def test_a_broken_endpoint_fails_with_the_sdks_message(project, tmp_path):
    document = yaml.safe_load((project / AZUREML / "endpoint.yml").read_text())
    document["auth_mode"] = "password"
    broken = tmp_path / "endpoint.yml"
    broken.write_text(yaml.safe_dump(document))
    with pytest.raises(ValidationError, match=r"Value 'password' passed is not in set \['aml_token', 'key'"):
        load_online_endpoint(broken)


def test_release_deploys_through_the_azureml_workflow_and_promotes_after_it(project):
    folder = project / ".github" / "workflows"
    jobs = yaml.safe_load((folder / "release.yml").read_text())["jobs"]
    for environment, needs in (("staging", "image"), ("production", ["image", "approve-production"])):
        job = jobs[f"deploy-{environment}"]
        assert job["uses"] == "./.github/workflows/_deploy-azureml.yml" and job["with"]["environment"] == environment
        assert job["needs"] == needs and job["permissions"]["id-token"] == "write"
        assert job["concurrency"] == {"group": f"deploy-{environment}", "cancel-in-progress": False, "queue": "max"}
    assert "deploy-production" in jobs["promote"]["needs"]
    assert jobs["promote"]["if"] == "${{ !cancelled() && needs.deploy-production.result == 'success' }}"
    assert all(
        "id-token" not in job.get("permissions", {})
        for name, job in jobs.items()
        if name != "image" and "deploy" not in name
    )

    deploy = yaml.safe_load((folder / "_deploy-azureml.yml").read_text())
    [(name, job)] = deploy["jobs"].items()
    assert job["environment"] == "${{ inputs.environment }}" and job["permissions"]["id-token"] == "write"
    steps = {step.get("name", step.get("uses", "")): step for step in job["steps"]}
    [login] = [step for step in job["steps"] if step.get("uses", "").startswith("azure/login@")]
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}  # OIDC: no secret, no creds
    assert "secrets." not in yaml.safe_dump(deploy)
    order = [step.get("name") for step in job["steps"]]
    assert order.index("Smoke-test the new deployment alone") < order.index("Canary share of the traffic")
    assert order.index("Canary share of the traffic") < order.index("Health window")
    assert order.index("Health window") < order.index("All traffic to the new deployment")
    assert steps["Roll the traffic back"]["if"] == "${{ failure() && steps.canary.outcome != 'skipped' }}"


def test_staging_and_production_log_in_as_identities_of_their_own(project):
    """Issue 27, item 8. What Azure enforces (a federated credential's subject, role scopes) cannot run
    here: the workflow must take the client id from the job's own environment, and the setup must make
    one identity per environment, each trusting only its environment's subject. Checked by reading."""
    deploy = yaml.safe_load((project / ".github" / "workflows" / "_deploy-azureml.yml").read_text())
    [job] = deploy["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    [login] = [step for step in job["steps"] if step.get("uses", "").startswith("azure/login@")]
    assert login["with"]["client-id"] == "${{ vars.AZURE_CLIENT_ID }}"  # the environment's variable
    names = [step.get("name") for step in job["steps"]]
    guard = job["steps"][names.index("This environment's own identity")]
    assert names.index("This environment's own identity") < names.index("Log in to Azure (OpenID Connect)")
    assert guard["env"]["CLIENT_ID"] == "${{ vars.AZURE_CLIENT_ID }}" and "exit 2" in guard["run"]
    # The image was built by main's _image.yml for this commit, whichever environment deploys it.
    verify = job["steps"][names.index("Check the image's build provenance")]["run"]
    assert "/.github/workflows/_image.yml@refs/heads/main" in verify and "--source-ref refs/heads/main" in verify
    assert '--source-digest "$GITHUB_SHA"' in verify

    setup = (project / AZUREML / "README.md").read_text()
    assert "one per environment" in setup and "`AZURE_CLIENT_ID` | this environment's own identity" in setup
    assert f"--name {SLUG}-deploy-$env" in setup and "environment:$env --audiences" in setup
    assert "deployment branches `main` only" in setup and "v*.*.*" not in setup
    readme = (project / "README.md").read_text()
    assert "production's **own** identity" in readme


def test_the_projects_own_traffic_code_is_tested_lint_clean_and_typed(project, tmp_path):
    """Only what this target adds: every other file is the default bake's, which test_bake.py and
    test_generated.py check (ruff, mypy, the whole suite)."""
    result = run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/targets/azureml")
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout[-3000:]
    ops = [AZUREML]
    files = [*ops, f"src/{PACKAGE}/cli.py", "tests/targets/azureml"]
    run(project, "-m", "ruff", "format", "--no-cache", "--check", *files)
    run(project, "-m", "ruff", "check", "--no-cache", *files)
    run(project, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"), *ops)


STAND_IN_AZ = """#!/usr/bin/env bash
case "$*" in
  *"online-endpoint show"*) echo "$SCORING_URI" ;;
  *"online-endpoint get-credentials"*) echo "stand-in-token" ;;
  *) echo "stand-in az: unexpected $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture(scope="module")
def server(project_with_model, tmp_path_factory):
    """The project's real server on the session's exported model (the same server code in both targets)."""
    log = tmp_path_factory.mktemp("azureml-server") / "server.log"
    port = free_port()
    command = [sys.executable, "-m", f"{PACKAGE}.serving", "--model", "outputs/model.onnx", "--port", str(port)]
    process = start(command, log, env=project_env(project_with_model), cwd=project_with_model)
    wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=60, process=process, log=log)
    yield f"http://127.0.0.1:{port}"
    stop(process)


def probe(project: Path, tmp_path: Path, scoring_uri: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """targets/azureml/probe.sh with a stand-in `az` that points it at `scoring_uri`."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    az = tmp_path / "bin" / "az"
    az.write_text(STAND_IN_AZ)
    az.chmod(0o755)
    environment = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    environment.update(SCORING_URI=scoring_uri, PROBE_INTERVAL="0.2", **env)
    environment.pop("GITHUB_ACTIONS", None)
    return subprocess.run(
        ["bash", f"{AZUREML}/probe.sh", f"{SLUG}-staging", "green", *args],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_probe_smoke_tests_the_real_server_and_fails_on_a_bad_answer(project, server, tmp_path):
    assert shutil.which("curl"), "curl is needed (the runner has it)"
    subprocess.run([str(Path(sys.executable).parent / "shellcheck"), f"{AZUREML}/probe.sh"], cwd=project, check=True)

    smoke = probe(project, tmp_path, f"{server}/predict", "0")
    assert smoke.returncode == 0 and "deployment green answered the smoke request" in smoke.stdout, smoke
    window = probe(project, tmp_path, f"{server}/predict", "1")
    assert window.returncode == 0 and "answered 2xx, by green directly and through the traffic split" in window.stdout

    request = json.loads((project / TARGETS / "smoke-request.json").read_text())
    del request["records"][0]["income"]
    (tmp_path / "bad.json").write_text(json.dumps(request))
    refused = probe(project, tmp_path, f"{server}/predict", "0", SMOKE_REQUEST=str(tmp_path / "bad.json"))
    assert refused.returncode == 1, refused
    assert f"::error::{SLUG}-staging (deployment green) answered 422" in refused.stdout and "income" in refused.stdout

    gone = probe(project, tmp_path, f"http://127.0.0.1:{free_port()}/predict", "0")
    assert gone.returncode == 1 and "gave no answer at http://127.0.0.1:" in gone.stdout, gone
