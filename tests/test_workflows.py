"""The generated project's CI/CD: every workflow, the Dependabot file, the deploy script and the
Kubernetes overlays pass their linters with zero findings on every baked variant; the push workflow
runs for real under act against a real MLflow server (one run across separate jobs; a gate out of
reach fails the workflow and registers nothing)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SLUG, TEMPLATE
from processes import free_port, start, stop, wait_for_http

FRAMEWORKS = ("sklearn", "pytorch", "keras")
TASKS = ("binary", "multiclass", "regression")
VARIANTS = [pytest.param(framework, task, id=f"{framework}-{task}") for framework in FRAMEWORKS for task in TASKS]
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def tool(name: str) -> str:
    """A linter from this venv (requirements-test.txt), else from PATH."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found in {BIN} or on PATH: install requirements-test.txt (scripts/setup-venv.sh)")
    return str(found)


def check(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (f"`{' '.join(map(str, command))}` exited {result.returncode}\n"
                                    f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def workflows(root: Path) -> list[Path]:
    files = sorted((root / ".github" / "workflows").glob("*.y*ml"))
    assert files, f"no workflows in {root}/.github/workflows"
    return files


def lint_workflows(root: Path) -> None:
    """actionlint (with shellcheck on run: blocks), zizmor's offline audits, the workflow JSON schema."""
    files = workflows(root)
    check(tool("actionlint"), *files, cwd=root)
    check(tool("zizmor"), "--offline", root / ".github")
    check(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files)


@pytest.fixture(scope="module")
def variant(baked):
    return lambda framework, task: baked(framework=framework, task=task)


# --- static, every variant ----------------------------------------------------------------------

@pytest.mark.parametrize(("framework", "task"), VARIANTS)
def test_workflows_lint_clean(variant, framework, task):
    lint_workflows(variant(framework, task))


@pytest.mark.parametrize(("framework", "task"), VARIANTS)
def test_dependabot_and_deploy_script_lint_clean(variant, framework, task):
    project = variant(framework, task)
    check(tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", project / ".github" / "dependabot.yml")
    check(tool("shellcheck"), project / "deploy" / "deploy.sh", project / "deploy" / "kubeconfig.sh")


@pytest.mark.parametrize(("framework", "task"), VARIANTS)
def test_overlays_render_to_valid_kubernetes(variant, framework, task, tmp_path):
    project = variant(framework, task)
    for environment in ("staging", "production"):
        rendered = tmp_path / f"{environment}.yaml"
        rendered.write_text(check(tool("kubectl"), "kustomize", project / "deploy" / "k8s" / "overlays" / environment))
        check(tool("kubernetes-validate"), "--strict", rendered)
        documents = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered.read_text())}
        assert documents["Deployment"]["metadata"]["namespace"] == f"{SLUG}-{environment}"
        container = documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        pod = documents["Deployment"]["spec"]["template"]
        volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
        assert volumes["tmp"]["emptyDir"]["sizeLimit"] == "256Mi"
        assert_image_pinned_by_digest(pod["spec"]["containers"])
        assert_network_policy(documents["NetworkPolicy"], pod["metadata"]["labels"])
        assert_disruption_budget(documents["PodDisruptionBudget"], pod["metadata"]["labels"])


def assert_image_pinned_by_digest(containers: list[dict]) -> None:
    """No tag at all (an untagged image is `latest` too): the overlays carry a digest the release
    replaces, and the checked-in one is the all-zero placeholder that can never be pulled."""
    for container in containers:
        image = container["image"]
        assert not image.endswith(":latest") and "@sha256:" in image, image
        assert image.endswith("@sha256:" + "0" * 64), f"{image}: the overlay must keep the placeholder digest"


def assert_network_policy(policy: dict, pod_labels: dict) -> None:
    """Ingress to the http port only, from this namespace and the ingress controller's; no egress."""
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"] and spec["egress"] == []
    assert spec["ingress"], "an empty ingress list would refuse the ingress controller too"
    for rule in spec["ingress"]:
        assert rule["ports"] == [{"protocol": "TCP", "port": "http"}], rule
        assert {"podSelector": {}} in rule["from"], rule  # the namespace's own pods, no added labels
        namespaces = [peer["namespaceSelector"] for peer in rule["from"] if "namespaceSelector" in peer]
        assert namespaces == [{"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}], rule


def assert_disruption_budget(budget: dict, pod_labels: dict) -> None:
    """A drain can always evict a pod, whatever the replica count (staging: 1, production: 2)."""
    spec = budget["spec"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "minAvailable" not in spec and spec["maxUnavailable"] == 1  # minAvailable 1 with 1 replica: no drain
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_torch_comes_from_the_cpu_index_only_where_needed(variant, framework):
    text = "".join(path.read_text() for path in workflows(variant(framework, "binary")))
    assert ("download.pytorch.org/whl/cpu" in text) == (framework != "sklearn")
    assert "{%" not in text and "cookiecutter" not in text  # the raw blocks closed where they should


def test_security_rules_hold_in_every_workflow(variant):
    """What zizmor does not insist on, checked by reading the files."""
    project = variant("sklearn", "binary")
    for path in [*workflows(project), TEMPLATE / ".github" / "workflows" / "template-ci.yml"]:
        text = path.read_text()
        spec = yaml.safe_load(text)
        assert spec.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
        assert "pull_request_target" not in text, path.name
        for job_name, job in spec["jobs"].items():
            where = f"{path.name}:{job_name}"
            granted = job.get("permissions", {})
            assert "packages" not in granted or path.name in ("_image.yml", "release.yml"), where
            assert "pull-requests" not in granted or job_name == "pr-comment", where
            for step in job.get("steps", []):
                uses = step.get("uses", "")
                if uses and not uses.startswith("./"):
                    assert PINNED.match(uses), f"{where}: {uses} is not pinned to a commit"
                    assert re.search(re.escape(uses) + r" # v\d+\.\d+\.\d+", text), f"{where}: {uses} lacks # vX.Y.Z"
                if uses.startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, where
                assert "github.event" not in step.get("run", ""), f"{where}: pass event data through env"


def test_template_ci_lint_clean():
    lint_workflows(TEMPLATE)


# --- executed with act ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    server = start([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                    "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                    "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
                   log=folder / "server.log", env={"MLFLOW_DISABLE_TELEMETRY": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=90, process=server, log=folder / "server.log")
        yield url
    finally:
        stop(server, timeout=5)


def act_push(project: Path, job: str, tracking_uri: str, home: Path, workflow: str = "ci.yml",
             event: Path | None = None) -> subprocess.CompletedProcess:
    """`act push -j JOB` in host mode: the job and everything it needs, each job its own process tree.

    act fetches every remote action of a job before it runs, even steps it will skip; the workflows
    skip those steps under act (`if: ${{ !env.ACT }}`), so an empty local stand-in satisfies the fetch.
    """
    stub = home / "stub-action"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "action.yml").write_text("name: stub\ndescription: skipped under act\nruns:\n  using: composite\n"
                                     "  steps: []\n")
    remote = sorted({match for path in workflows(project)
                     for match in re.findall(r"uses: ([\w.-]+/[\w./-]+@[0-9a-f]{40})", path.read_text())})
    replacements = [arg for ref in remote for arg in ("--local-repository", f"{ref}={stub}")]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "GITHUB_", "ACT"))}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", MLFLOW_DISABLE_TELEMETRY="true")
    options = ["-e", str(event)] if event else []
    return subprocess.run([tool("act"), "push", "-W", f".github/workflows/{workflow}", "-j", job, *options,
                           "-P", "ubuntu-latest=-self-hosted", "--secret", f"MLFLOW_TRACKING_URI={tracking_uri}",
                           *replacements], cwd=project, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)


def repository_copy(project: Path, folder: Path) -> Path:
    """act reads the commit and ref from git: a committed copy of the baked project."""
    copy = folder / project.name
    shutil.copytree(project, copy)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "baked"]):
        subprocess.run([*git, *command], cwd=copy, check=True, capture_output=True)
    return copy


def job_result(log: str, job: str, reusable: bool = True) -> str | None:
    """How act reports a job: `[train/train/train]` for a reusable workflow's job, `[ci/resolve]` else."""
    label = f"{job}/{job}/{job}" if reusable else f"[\\w-]+/{job}"
    found = re.search(rf"\[{label}\]\s+🏁\s+Job (succeeded|failed)", log)
    return found.group(1) if found else None


def test_push_workflow_keeps_one_mlflow_run_across_jobs(variant, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    project = repository_copy(variant("sklearn", "binary"), tmp_path)
    result = act_push(project, "export", mlflow_server, tmp_path / "home")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-8000:]
    assert [job_result(log, job) for job in ("train", "gate", "export")] == ["succeeded"] * 3, log[-8000:]
    # Each later job found the run through the train job's output, not a file left behind.
    assert re.search(r"\[gate/gate/gate\].*attached to run \w+ \(from \$MLFLOW_RUN_ID\)", log), log[-8000:]
    assert re.search(r"\[export/export/export\].*attached to run \w+ \(from \$MLFLOW_RUN_ID\)", log), log[-8000:]

    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(SLUG).experiment_id])
    assert len(runs) == 1, [run.info.run_id for run in runs]
    run = runs[0]
    assert re.search(rf"run_id={run.info.run_id}", log)
    for stage in ("validate", "train", "evaluate", "gate", "export"):
        assert run.data.tags.get(f"stage.{stage}") == "done", stage
    assert run.data.tags["gate.verdict"] == "passed"
    assert any(name.startswith("test.") for name in run.data.metrics)
    assert [artifact.path for artifact in client.list_artifacts(run.info.run_id, "onnx")] == ["onnx/model.onnx"]
    versions = client.search_model_versions(f"name = '{SLUG}'")
    assert [version.tags["run_id"] for version in versions] == [run.info.run_id]

    # A release tag on the same commit finds that version by its git_sha instead of retraining.
    tag = tmp_path / "tag-event.json"
    tag.write_text(json.dumps({"ref": "refs/tags/v1.0.0"}))
    result = act_push(project, "resolve", mlflow_server, tmp_path / "home", workflow="release.yml", event=tag)
    log = result.stdout + result.stderr
    assert result.returncode == 0 and job_result(log, "resolve", reusable=False) == "succeeded", log[-8000:]
    assert f"model_version={versions[0].version}" in log and "mode=registry" in log, log[-8000:]


def test_gate_out_of_reach_fails_the_workflow_and_registers_nothing(variant, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    project = repository_copy(variant("sklearn", "binary"), tmp_path)
    config_path = project / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    for bound in config["gate"]["thresholds"].values():
        bound.update({key: 1e9 if key == "min" else -1e9 for key in bound})
    name = f"{SLUG}-unreachable"  # its own experiment and model: the other test's run shares the server
    config["tracking"] = {"experiment": name, "model_name": name}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qam",
                    "gate out of reach"], cwd=project, check=True)

    result = act_push(project, "export", mlflow_server, tmp_path / "home")
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-8000:]
    assert job_result(log, "train") == "succeeded" and job_result(log, "gate") == "failed", log[-8000:]
    assert job_result(log, "export") is None, "export must not run after a failed gate"

    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    [run] = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    assert run.data.tags["gate.verdict"] == "failed"
    assert client.search_model_versions(f"name = '{name}'") == []
