"""The generated project's CI/CD: every workflow, the Dependabot file, the deploy script and the
Kubernetes overlays pass their linters with zero findings on every baked variant; the push workflow
runs for real under act, with the actions' real code (act_support.py), against a real MLflow server
(one run across separate jobs; a gate out of reach fails the workflow and registers nothing)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from act_support import run_act
from conftest import FRAMEWORKS, PACKAGE, SLUG, TEMPLATE
from processes import free_port, start, stop, wait_for_http

TASKS = ("binary", "multiclass", "regression")
# Workflows change with the framework (the torch index, KERAS_BACKEND) and little with the task: every task
# with sklearn, every other framework with binary.
VARIANTS = [pytest.param("sklearn", task, id=f"sklearn-{task}") for task in TASKS] + [
    pytest.param(framework, "binary", id=f"{framework}-binary") for framework in FRAMEWORKS if framework != "sklearn"
]
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
OWNER = "your-org"  # cookiecutter.json's github_owner
KUBERNETES = Path("src") / PACKAGE / "targets" / "kubernetes"  # the target's folder in a bake


def tool(name: str) -> str:
    """A linter from this venv (requirements-test.txt), else from PATH."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found in {BIN} or on PATH: install requirements-test.txt (scripts/setup-venv.sh)")
    return str(found)


def check(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, (
        f"`{' '.join(map(str, command))}` exited {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def workflows(root: Path) -> list[Path]:
    files = sorted((root / ".github" / "workflows").glob("*.y*ml"))
    assert files, f"no workflows in {root}/.github/workflows"
    return files


def lint_workflows(root: Path) -> None:
    """actionlint (with shellcheck on run: blocks), zizmor's offline audits (default persona: nothing;
    auditor persona: nothing above low), the workflow and action JSON schemas."""
    files = workflows(root)
    check(tool("actionlint"), *files, cwd=root)
    check(tool("zizmor"), "--offline", root / ".github")
    check(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files)
    if actions := sorted((root / ".github" / "actions").glob("*/action.yml")):
        check(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", *actions)
    audit = subprocess.run(
        [tool("zizmor"), "--offline", "--persona=auditor", "--format=json", root / ".github"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    findings = [(f["ident"], f["determinations"]["severity"]) for f in json.loads(audit.stdout)]
    assert all(severity in ("Informational", "Low") for _, severity in findings), findings
    # The one low finding README explains: release.yml has no workflow-wide concurrency on purpose.
    assert [ident for ident, severity in findings if severity == "Low"] in ([], ["concurrency-limits"]), findings


# Options whose bakes change the workflows, linted like every framework and task.
OPTION_VARIANTS = [
    pytest.param({"deploy_target": "azureml"}, id="deploy_target-azureml"),
    pytest.param({"train_on": "databricks"}, id="train_on-databricks"),
    pytest.param({"task": "reinforcement", "framework": "pytorch"}, id="task-reinforcement"),
]


@pytest.fixture(scope="module")
def variant(baked):
    return lambda framework, task: baked(framework=framework, task=task)


# --- static, every variant ----------------------------------------------------------------------


@pytest.mark.parametrize(("framework", "task"), VARIANTS)
def test_workflows_lint_clean(variant, framework, task):
    lint_workflows(variant(framework, task))


@pytest.mark.parametrize("options", OPTION_VARIANTS)
def test_option_workflows_lint_clean(baked, options):
    """Each option's own workflows (release.yml and _deploy-azureml.yml, _train-databricks.yml and its
    callers); one bake per option, the defaults being linted above."""
    lint_workflows(baked(**options))


@pytest.mark.parametrize(("framework", "task"), VARIANTS)
def test_dependabot_and_deploy_script_lint_clean(variant, framework, task):
    project = variant(framework, task)
    check(tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", project / ".github" / "dependabot.yml")
    check(tool("shellcheck"), project / KUBERNETES / "deploy.sh", project / KUBERNETES / "kubeconfig.sh")


@pytest.mark.parametrize(("framework", "task"), VARIANTS)
def test_overlays_render_to_valid_kubernetes(variant, framework, task, tmp_path):
    project = variant(framework, task)
    for environment in ("staging", "production"):
        rendered = tmp_path / f"{environment}.yaml"
        overlay = project / KUBERNETES / "k8s" / "overlays" / environment
        rendered.write_text(check(tool("kubectl"), "kustomize", overlay))
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


def test_the_environments_prediction_log_url_reaches_the_server_as_a_generated_secret(baked, tmp_path):
    """What the deploy action does with the environment's PREDICTION_LOG_URL (its `kustomize edit add
    secret`, written out here: kubectl has no `edit`): the rendered pods read URL and sample rate from
    the generated Secret, and without one they read nothing (the reference is optional)."""
    project = baked()
    action = (project / ".github" / "actions" / "deploy-kubernetes" / "action.yml").read_text()
    assert "kustomize edit add secret prediction-log --from-file=url=prediction-log-url" in action
    overlay = shutil.copytree(project / KUBERNETES / "k8s", tmp_path / "k8s") / "overlays" / "production"
    (overlay / "prediction-log-url").write_text("postgresql://credit_model_log_server:pw@db.internal:5432/log")
    with (overlay / "kustomization.yaml").open("a") as kustomization:
        kustomization.write(
            "secretGenerator:\n  - name: prediction-log\n    files: [url=prediction-log-url]\n"
            "    literals: [sample=0.1]\n"
        )
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(check(tool("kubectl"), "kustomize", overlay))
    check(tool("kubernetes-validate"), "--strict", rendered)
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered.read_text())}
    secret = documents["Secret"]["metadata"]["name"]
    assert secret.startswith("prediction-log-")  # a hash of the content: a changed URL rolls the pods
    env = {
        variable["name"]: variable.get("valueFrom", {}).get("secretKeyRef")
        for variable in documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PREDICTION_LOG_URL"] == {"name": secret, "key": "url", "optional": True}
    assert env["PREDICTION_LOG_SAMPLE"] == {"name": secret, "key": "sample", "optional": True}


@pytest.mark.parametrize("options", [pytest.param({}, id="defaults"), *OPTION_VARIANTS])
def test_the_prediction_log_url_is_read_only_in_environments_limited_to_main(baked, options):
    """The log holds real inputs: its URL is read only by jobs in `monitoring`, `scoring` (main only,
    README) or the deploy environments, never in `tracking-read` (every branch), and no caller passes a
    repository secret of that name on."""
    root = baked(**options) / ".github" / "workflows"
    readers = {}
    for path in sorted(root.glob("*.yml")):
        for name, job in (yaml.safe_load(path.read_text()).get("jobs") or {}).items():
            text = yaml.safe_dump(job)
            if "secrets.PREDICTION_LOG_URL" in text:
                readers[f"{path.name}:{name}"] = job
    allowed = {"monitoring", "scoring", "staging", "production"}
    assert readers, "no job reads the prediction log's URL"
    for where, job in readers.items():
        environment = str(job.get("environment", ""))
        assert "uses" not in job, f"{where} passes the log's URL to a reusable workflow: a repository secret"
        if where == "_score.yml:score":  # the log only with log-to-db, and then environment `scoring`
            assert environment == "${{ inputs.log-to-db && 'scoring' || 'tracking-read' }}", environment
            assert job["env"]["PREDICTION_LOG_URL"] == "${{ inputs.log-to-db && secrets.PREDICTION_LOG_URL || '' }}"
        else:
            assert environment in allowed, f"{where}: environment {environment!r} reads the log's URL"
    readme = (root.parents[1] / "README.md").read_text()
    assert "`monitoring` and `scoring`: deployment branch **`main` only**" in readme
    assert "never the prediction log's URL" in readme


def assert_image_pinned_by_digest(containers: list[dict]) -> None:
    """No tag at all (an untagged image is `latest` too): the overlays carry a digest the release
    replaces, and the checked-in one is the all-zero placeholder that can never be pulled."""
    for container in containers:
        image = container["image"]
        assert not image.endswith(":latest") and "@sha256:" in image, image
        assert image.endswith("@sha256:" + "0" * 64), f"{image}: the overlay must keep the placeholder digest"


def assert_network_policy(policy: dict, pod_labels: dict) -> None:
    """Ingress to the http port only, from this namespace and the ingress controller's; egress to the
    cluster's DNS and the prediction log's PostgreSQL port alone (with none, the log cannot work)."""
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    dns, database = spec["egress"]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            # Exactly the DNS pods: kustomize's label on the app's own pods must not have reached it.
            "podSelector": {"matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
        }
    ]
    assert database["ports"] == [{"protocol": "TCP", "port": 5432}]
    # An empty or missing `to` (or ports) would open that port to everywhere: one address range here.
    assert [list(peer) for peer in database["to"]] == [["ipBlock"]] and "except" not in database["to"][0]["ipBlock"]
    assert database["to"][0]["ipBlock"]["cidr"] not in ("0.0.0.0/0", "::/0")
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


def local_actions(root: Path) -> list[Path]:
    return sorted((root / ".github" / "actions").glob("*/action.yml"))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_torch_comes_from_the_cpu_index_only_where_needed(variant, framework):
    """Every job installs through .github/actions/setup, which runs `make install`: the Makefile alone
    names the index, and what make runs (`make -n`) shows where torch comes from in each bake, whatever
    TORCH_INDEX_URL says (scripts/lock.sh passes it to every framework's `make lock`)."""
    project = variant(framework, "binary")
    text = "".join(path.read_text() for path in [*workflows(project), *local_actions(project)])
    assert "{%" not in text and "cookiecutter" not in text  # the raw blocks closed where they should
    assert "index-url" not in text and "download.pytorch.org" not in text
    torch = framework in ("pytorch", "keras")
    for index in (None, "https://mirror.example/whl/cpu"):
        chosen = [f"TORCH_INDEX_URL={index}"] if index else []
        commands = check("make", "-n", "install", "lock", "PYTHON=python", *chosen, cwd=project)
        index = index or "https://download.pytorch.org/whl/cpu"
        first = f"python -m pip install --no-deps --no-compile $(grep '^torch==' requirements.lock) --index-url {index}"
        lines = commands.splitlines()
        lock = lines.index("python -m pip install --no-deps --no-compile -r requirements.lock")
        if torch:  # first, from PyTorch's index: the lock then finds it installed
            assert lines.index(first) < lock, commands
            assert f"--extra-index-url {index} " in commands, commands
        else:
            assert "torch" not in commands, commands
            assert "--index-url" not in commands and "--extra-index-url" not in commands, commands


@pytest.mark.parametrize("options", [pytest.param({}, id="defaults"), *OPTION_VARIANTS])
def test_security_rules_hold_in_every_workflow(baked, options):
    """What zizmor does not insist on, checked by reading the files."""
    project = baked(**options)
    databricks = options.get("train_on") == "databricks"
    for path in [*workflows(project), TEMPLATE / ".github" / "workflows" / "template-ci.yml"]:
        text = path.read_text()
        spec = yaml.safe_load(text)
        assert spec.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
        assert "pull_request_target" not in text, path.name
        for job_name, job in spec["jobs"].items():
            where = f"{path.name}:{job_name}"
            granted = job.get("permissions", {})
            assert "packages" not in granted or path.name in ("_image.yml", "release.yml", "_deploy-azureml.yml"), where
            # OpenID Connect tokens: the image's attestation, the deployments' cloud logins and, when
            # training runs on Databricks, the jobs that log in to its workspace.
            signs = path.name == "_image.yml" or where == "release.yml:image"
            logs_in = job_name.startswith("deploy") or (databricks and "DATABRICKS" in yaml.safe_dump(job))
            assert "id-token" not in granted or signs or logs_in, where
            assert "pull-requests" not in granted or job_name == "pr-comment", where
            # monitor.yml: its issue job alone writes issues, its retrain job alone starts a workflow.
            assert "issues" not in granted or where == "monitor.yml:issue", where
            assert "actions" not in granted or where == "monitor.yml:retrain", where
            if "steps" in job and "secrets." in yaml.safe_dump(job).replace("secrets.GITHUB_TOKEN", ""):
                # A secret is read only by a job that names the environment holding it.
                assert job.get("environment"), f"{where} reads a secret without an environment"
            for step in job.get("steps", []):
                uses = step.get("uses", "")
                if uses and not uses.startswith("./"):
                    assert PINNED.match(uses), f"{where}: {uses} is not pinned to a commit"
                    assert re.search(re.escape(uses) + r" # v\d+\.\d+\.\d+", text), f"{where}: {uses} lacks # vX.Y.Z"
                if uses.startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, where
                assert "github.event" not in step.get("run", ""), f"{where}: pass event data through env"
    for path in local_actions(project):
        for step in yaml.safe_load(path.read_text())["runs"].get("steps", []):
            where = f"{path.parent.name}/{path.name}:{step.get('name', step.get('uses'))}"
            if uses := step.get("uses", ""):
                assert PINNED.match(uses), f"{where}: {uses} is not pinned to a commit"
                assert re.search(re.escape(uses) + r" # v\d+\.\d+\.\d+", path.read_text()), f"{where}: lacks # vX.Y.Z"
            assert "${{" not in step.get("run", ""), f"{where}: pass inputs through env"


def test_only_the_protected_branch_writes_and_only_its_commits_ship(variant):
    """The trust chain as the workflows declare it; GitHub enforces the environments' branch policies,
    which no local run can, so this part is checked by reading the files."""
    project = variant("sklearn", "binary")
    folder = project / ".github" / "workflows"
    ci, release = (yaml.safe_load((folder / name).read_text()) for name in ("ci.yml", "release.yml"))
    on_ci = ci[True]  # PyYAML reads the key `on` as True
    assert on_ci["push"] == {"branches": ["**"]}, "ci must not run for tags (a tag would register twice)"
    register = ci["jobs"]["register"]
    # A push to main, or a run started on main (monitor.yml's retraining): never a pull request.
    assert register["if"] == "${{ github.event_name != 'pull_request' && github.ref == 'refs/heads/main' }}"
    assert set(on_ci) == {"push", "pull_request", "workflow_dispatch"}
    assert set(register["needs"]) == {"train", "gate", "export"}
    assert yaml.safe_load((folder / "_register.yml").read_text())["jobs"]["register"]["environment"] == "registry"
    for job in ("train", "gate", "export"):
        chosen = ci["jobs"][job]["with"]["environment"]
        assert "refs/heads/main" in chosen and "'registry'" in chosen and "'tracking-read'" in chosen, job
    for reusable in ("_train.yml", "_gate.yml", "_export.yml"):
        text = (folder / reusable).read_text()
        # Only the writer environment tracks on the server; every other ref keeps its run local.
        assert (
            "MLFLOW_TRACKING_URI: ${{ inputs.environment == 'registry' && secrets.MLFLOW_TRACKING_URI || '' }}" in text
        )
        assert "register" not in yaml.safe_load(text)["jobs"][reusable[1:-4]].get("environment", "")

    assert "concurrency" not in release, "releases must queue, not cancel each other"
    jobs = release["jobs"]
    assert jobs["resolve"]["environment"] == "tracking-read" and jobs["promote"]["environment"] == "registry"
    for name in ("deploy-staging", "deploy-production"):
        assert jobs[name]["concurrency"] == {"group": name, "cancel-in-progress": False, "queue": "max"}, name
    approval = jobs["approve-production"]
    assert approval["environment"] == "production-approval" and "concurrency" not in approval
    assert "secrets." not in yaml.safe_dump(approval)
    assert jobs["deploy-production"]["needs"] == ["image", "approve-production"]
    assert jobs["deploy-production"]["environment"] == "production"


def test_template_ci_lint_clean():
    lint_workflows(TEMPLATE)


# --- executed with act ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    server = start(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--workers",
            "1",
        ],
        log=folder / "server.log",
        env={"MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=90, process=server, log=folder / "server.log")
        yield url
    finally:
        stop(server, timeout=5)


def act_push(
    project: Path,
    job: str,
    tracking_uri: str,
    home: Path,
    tools: Path,
    workflow: str = "ci.yml",
    event: Path | None = None,
    name: str = "push",
) -> subprocess.CompletedProcess:
    """`act push -j JOB` with the real actions (act_support.py), the tracking server as the secret."""
    return run_act(project, home, name, job, workflow, event, {"MLFLOW_TRACKING_URI": tracking_uri}, tools)


def head(folder: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def repository_copy(project: Path, folder: Path) -> Path:
    """act reads the commit and ref from git: a committed copy of the baked project, on main.

    act 0.2.89's workflow schema predates GitHub's `queue: max` concurrency option and rejects the
    file; the copy drops that line (actionlint and the workflow JSON schema check it statically).
    """
    copy = folder / project.name
    shutil.copytree(project, copy)
    release = copy / ".github" / "workflows" / "release.yml"
    release.write_text(release.read_text().replace("      queue: max\n", ""))
    git(copy, "init", "-q", "-b", "main")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "baked")
    git(copy, "remote", "add", "origin", f"https://github.com/{OWNER}/{SLUG}")  # act's github.repository
    return copy


def job_result(log: str, job: str, reusable: bool = True) -> str | None:
    """How act reports a job: `[train/train/<job name>]` for a reusable workflow's job, `[release/<name>]`
    for a job of the workflow itself (found by its `name:` or id)."""
    label = rf"{job}/{job}/[^\]]+" if reusable else rf"[\w-]+/{job}"
    found = re.search(rf"\[{label}\]\s+🏁\s+Job (succeeded|failed)", log)
    return found.group(1) if found else None


def release_event(folder: Path) -> Path:
    """A release as it is started: release.yml run by hand on main, naming the tag it is to create."""
    event = folder / "release-event.json"
    event.write_text(json.dumps({"ref": "refs/heads/main", "inputs": {"tag": "v1.0.0", "model-version": ""}}))
    return event


def resolve(project: Path, server: str, home: Path, tools: Path) -> tuple[str | None, str]:
    """release.yml's resolve job for a release of main's checked-out commit: (result, log).
    Its refusals (a tag outside main, another branch) are test_release_trust.py's."""
    result = act_push(
        project,
        "resolve",
        server,
        home,
        tools,
        workflow="release.yml",
        event=release_event(home.parent),
        name="workflow_dispatch",
    )
    log = result.stdout + result.stderr
    return job_result(log, "Check the commit and pick the verified model", reusable=False), log


@pytest.fixture(scope="module")
def main_push(variant, mlflow_server, tmp_path_factory, act_tools):
    """A push to main under act: train -> gate -> export -> register, against the real server."""
    folder = tmp_path_factory.mktemp("main-push")
    project = repository_copy(variant("sklearn", "binary"), folder)
    result = act_push(project, "register", mlflow_server, folder / "home", act_tools)
    return project, result.returncode, result.stdout + result.stderr


def test_push_to_main_keeps_one_run_and_registers_what_passed_every_check(main_push, mlflow_server):
    from mlflow.tracking import MlflowClient

    project, returncode, log = main_push
    assert returncode == 0, log[-8000:]
    assert [job_result(log, job) for job in ("train", "gate", "export", "register")] == ["succeeded"] * 4, log[-8000:]
    # Each later job found the run through the train job's output, not a file left behind.
    for job in ("gate", "export", "register"):
        assert re.search(rf"\[{job}/{job}/[^\]]+\].*attached to run \w+ \(from \$MLFLOW_RUN_ID\)", log), job

    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(SLUG).experiment_id])
    assert len(runs) == 1, [run.info.run_id for run in runs]
    run = runs[0]
    assert re.search(rf"run_id={run.info.run_id}", log)
    for stage in ("validate", "train", "evaluate", "gate", "export", "register"):
        assert run.data.tags.get(f"stage.{stage}") == "done", stage
    assert run.data.tags["gate.verdict"] == "passed" and run.data.tags["source_ref"] == "refs/heads/main"
    assert [artifact.path for artifact in client.list_artifacts(run.info.run_id, "onnx")] == ["onnx/model.onnx"]
    [version] = [v for v in client.search_model_versions(f"name = '{SLUG}'") if v.run_id == run.info.run_id]
    onnx_file = Path(client.download_artifacts(run.info.run_id, "onnx/model.onnx"))
    assert version.tags == {
        "run_id": run.info.run_id,
        "source_ref": "refs/heads/main",
        "git_sha": head(project),
        "gate.verdict": "passed",
        "export.parity": "passed",
        "onnx.sha256": hashlib.sha256(onnx_file.read_bytes()).hexdigest(),
    }


def test_release_tag_on_main_ships_the_version_ci_registered(main_push, mlflow_server, tmp_path, act_tools):
    from mlflow.tracking import MlflowClient

    project, returncode, log = main_push
    assert returncode == 0, log[-8000:]
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    [version] = [v for v in client.search_model_versions(f"name = '{SLUG}'") if v.tags["git_sha"] == head(project)]
    result, log = resolve(project, mlflow_server, tmp_path / "home", act_tools)
    assert result == "succeeded", log[-8000:]
    assert "is on main" in log and "tag=v1.0.0" in log and "mode=registry" in log, log[-8000:]
    assert f"model_version={version.version}" in log and f"onnx_sha256={version.tags['onnx.sha256']}" in log


# Each reason a version may not ship is tested on the CLI that resolve calls (the generated project's
# tests/test_registry.py); here one of them shows that the workflow stops on it. The changed digest is
# the one a registry check alone cannot see: the file must be fetched and hashed.
def test_release_refuses_a_version_whose_file_changed(main_push, mlflow_server, tmp_path, act_tools):
    """A version for the tagged commit whose ONNX file is not the one that passed parity stops the
    release in resolve, with the reason."""
    from mlflow.tracking import MlflowClient

    project = shutil.copytree(main_push[0], tmp_path / "copy")
    git(project, "commit", "-q", "--allow-empty", "-m", "a commit CI never registered properly")
    sha = head(project)
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    [good] = [v for v in client.search_model_versions(f"name = '{SLUG}'") if v.tags["git_sha"] == head(main_push[0])]
    client.create_model_version(
        SLUG,
        good.source,
        good.run_id,
        tags={**good.tags, "git_sha": sha, "onnx.sha256": "0" * 64},
        model_id=good.source.removeprefix("models:/"),
    )
    result, log = resolve(project, mlflow_server, tmp_path / "home", act_tools)
    assert result == "failed" and "the file changed since" in log, log[-8000:]
    assert "Shipping model version" not in log


def test_branch_runs_write_nothing_to_the_tracking_server(variant, mlflow_server, tmp_path, act_tools):
    """A push to another branch trains in the embedded store (environment tracking-read) and reads the
    server only; registering is the protected branch's job alone (checked statically above)."""
    from mlflow.tracking import MlflowClient

    project = repository_copy(variant("sklearn", "binary"), tmp_path)
    name = f"{SLUG}-feature"  # its own experiment: the other tests' runs share the server
    config_path = project / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["tracking"] = {"experiment": name, "model_name": name}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    git(project, "checkout", "-q", "-b", "feature")
    git(project, "commit", "-qam", "a branch of its own")
    event = tmp_path / "push-feature.json"
    event.write_text(json.dumps({"ref": "refs/heads/feature"}))
    result = act_push(project, "train", mlflow_server, tmp_path / "home", act_tools, event=event)
    log = result.stdout + result.stderr
    assert result.returncode == 0 and job_result(log, "train") == "succeeded", log[-8000:]
    assert re.search(r"run \w+ started in sqlite:///", log), log[-8000:]
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    assert client.get_experiment_by_name(name) is None


def test_gate_out_of_reach_fails_the_workflow_and_registers_nothing(variant, mlflow_server, tmp_path, act_tools):
    from mlflow.tracking import MlflowClient

    project = repository_copy(variant("sklearn", "binary"), tmp_path)
    config_path = project / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    for bound in config["gate"]["thresholds"].values():
        bound.update({key: 1e9 if key == "min" else -1e9 for key in bound})
    name = f"{SLUG}-unreachable"  # its own experiment and model: the other tests' runs share the server
    config["tracking"] = {"experiment": name, "model_name": name}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    git(project, "commit", "-qam", "gate out of reach")

    result = act_push(project, "register", mlflow_server, tmp_path / "home", act_tools)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-8000:]
    assert job_result(log, "train") == "succeeded" and job_result(log, "gate") == "failed", log[-8000:]
    assert job_result(log, "export") is None and job_result(log, "register") is None, log[-8000:]

    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    [run] = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    assert run.data.tags["gate.verdict"] == "failed"
    assert client.search_model_versions(f"name = '{name}'") == []
