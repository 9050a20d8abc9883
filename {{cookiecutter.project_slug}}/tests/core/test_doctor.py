"""doctor against a GitHub REST API stand-in on loopback, answering with tests/core/github_api/'s bodies.

Those bodies are GitHub's own documented response examples (its OpenAPI description, adapted to this
repository's environments; tests/core/github_api/README.md); each test changes one setting the way the
real API would show it, and doctor must name it, with its fix, and exit 1.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.ops import doctor

PROJECT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "github_api"
REPO = "your-org/{{ cookiecutter.project_slug }}"
TOKEN = "github_pat_test_0123456789"
WORKFLOWS = PROJECT / ".github" / "workflows"
ENVIRONMENTS = (
    "tracking-read",
    "registry",
    # A tabular project's monitor and score workflows (the post-generation hook removes them otherwise).
    *(("monitoring", "scoring") if (WORKFLOWS / "monitor.yml").is_file() else ()),
    "staging",
    "production-approval",
    "production",
    "doctor",
)
# Environments set up like `registry` (main only) in GitHub's answers, beside the documented examples.
LIKE_REGISTRY = ("monitoring", "scoring")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def configured() -> dict[str, Any]:
    """Path (after /repos/OWNER/NAME/) -> (status, body) of a repository set up as the README says."""
    environments = fixture("environments.json")
    registry = next(item for item in environments["environments"] if item["name"] == "registry")
    for name in LIKE_REGISTRY:
        if name in ENVIRONMENTS:
            environments["environments"].append(
                {**copy.deepcopy(registry), "name": name, "url": registry["url"].replace("registry", name)}
            )
    environments["total_count"] = len(environments["environments"])
    routes: dict[str, Any] = {
        "environments": (200, environments),
        "rules/branches/main": (200, fixture("branch-rules.json")),
        "branches/main/protection": (
            404,
            {"message": "Branch not protected", "documentation_url": "", "status": "404"},
        ),
        "actions/oidc/customization/sub": (200, fixture("oidc-sub.json")),
        "actions/secrets": (200, fixture("repository-secrets.json")),
    }
    for name in ENVIRONMENTS:
        routes[f"environments/{name}/deployment-branch-policies"] = (200, fixture("deployment-branch-policies.json"))
        routes[f"environments/{name}/secrets"] = (200, fixture("environment-secrets.json"))
    routes["environments/staging/secrets"] = routes["environments/production/secrets"] = (
        200,
        {"total_count": 0, "secrets": []},
    )
    for name in LIKE_REGISTRY:  # the prediction log's role URL beside the read-only user's secrets
        secrets = fixture("environment-secrets.json")
        secrets["secrets"].append({**secrets["secrets"][0], "name": "PREDICTION_LOG_URL"})
        secrets["total_count"] = len(secrets["secrets"])
        routes[f"environments/{name}/secrets"] = (200, secrets)
    token = {**fixture("environment-secrets.json")["secrets"][0], "name": "DOCTOR_TOKEN"}
    routes["environments/doctor/secrets"] = (200, {"total_count": 1, "secrets": [token]})
    return routes


class FakeGitHub:
    def __init__(self, routes: dict[str, Any]):
        self.routes, self.seen = routes, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                fake.seen.append((path, self.headers.get("Authorization"), self.headers.get("X-GitHub-Api-Version")))
                prefix = f"/repos/{REPO}/"
                status, body = (404, {"message": "Not Found"})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, body = (401, {"message": "Bad credentials"})
                elif path.startswith(prefix) and path[len(prefix) :] in fake.routes:
                    status, body = fake.routes[path[len(prefix) :]]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def github(monkeypatch):
    fake = FakeGitHub(configured())
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    yield fake
    fake.server.shutdown()


def run_doctor(capsys, *args: str) -> tuple[int, str]:
    code = main(["doctor", "--root", str(PROJECT), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def environment(fake: FakeGitHub, name: str) -> dict[str, Any]:
    return next(item for item in fake.routes["environments"][1]["environments"] if item["name"] == name)


def test_the_workflows_use_the_environments_doctor_knows():
    used = doctor.environments_used(PROJECT)
    assert set(used) == set(ENVIRONMENTS)
    assert set(used) <= set(doctor.REQUIREMENTS)  # a new environment in a workflow needs its row


def test_a_repository_set_up_as_the_readme_says_passes(github, capsys):
    code, out = run_doctor(capsys)
    assert code == 0, out
    assert "every required setting holds" in out
    assert (
        "environment registry: secrets MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME" in out
    )
    assert all(auth == f"Bearer {TOKEN}" and version == doctor.API_VERSION for _, auth, version in github.seen)
    assert f"/repos/{REPO}/environments/production/deployment-branch-policies" in {path for path, *_ in github.seen}


def test_a_tag_pattern_on_the_writer_environment_is_refused(github, capsys):
    tag = {"id": 361473, "node_id": "MDE2OkdhdGVCcmFuY2hQb2xpY3kzNjE0NzM=", "name": "v*.*.*", "type": "tag"}
    policies = fixture("deployment-branch-policies.json")
    policies["branch_policies"].append(tag)
    policies["total_count"] = 2
    github.routes["environments/registry/deployment-branch-policies"] = (200, policies)
    code, out = run_doctor(capsys)
    assert code == 1
    assert "environment registry (the writer: registers versions and moves aliases) admits tag pattern 'v*.*.*'" in out
    assert f"gh api -X DELETE repos/{REPO}/environments/registry/deployment-branch-policies/361473" in out


def test_another_branch_on_staging_is_refused(github, capsys):
    policies = copy.deepcopy(fixture("deployment-branch-policies.json"))
    policies["branch_policies"][0]["name"] = "release/*"
    github.routes["environments/staging/deployment-branch-policies"] = (200, policies)
    code, out = run_doctor(capsys)
    assert code == 1
    assert "environment staging (deploys to staging) admits branch pattern 'release/*'" in out
    assert "environment staging admits no branch main" in out


def test_an_unrestricted_production_environment_is_refused(github, capsys):
    environment(github, "production")["deployment_branch_policy"] = None
    code, out = run_doctor(capsys)
    assert code == 1
    assert "environment production (deploys to production) admits every branch and tag" in out
    assert f"gh api -X PUT repos/{REPO}/environments/production --input -" in out


def test_an_approval_without_reviewers_is_refused(github, capsys):
    environment(github, "production-approval")["protection_rules"] = [
        rule
        for rule in environment(github, "production-approval")["protection_rules"]
        if rule["type"] != "required_reviewers"
    ]
    code, out = run_doctor(capsys)
    assert code == 1
    assert "environment production-approval (the approval before production) has no required reviewers" in out
    assert '"prevent_self_review": true' in out


def test_a_missing_environment_is_refused(github, capsys):
    listed = github.routes["environments"][1]
    listed["environments"] = [item for item in listed["environments"] if item["name"] != "registry"]
    listed["total_count"] -= 1
    code, out = run_doctor(capsys)
    assert code == 1
    assert "environment registry does not exist (used by " in out


def test_a_repository_level_tracking_password_is_refused(github, capsys):
    secrets = fixture("repository-secrets.json")
    secrets["secrets"].append(
        {"name": "MLFLOW_TRACKING_PASSWORD", "created_at": "2020-01-10T10:59:22Z", "updated_at": "2020-01-11T11:59:22Z"}
    )
    secrets["total_count"] = 2
    github.routes["actions/secrets"] = (200, secrets)
    code, out = run_doctor(capsys)
    assert code == 1
    assert "MLFLOW_TRACKING_PASSWORD is a repository secret: every branch's jobs receive it" in out
    assert f"gh secret delete MLFLOW_TRACKING_PASSWORD --repo {REPO}" in out


def test_a_writer_environment_without_its_user_is_refused(github, capsys):
    github.routes["environments/registry/secrets"] = (
        200,
        {"total_count": 1, "secrets": [fixture("environment-secrets.json")["secrets"][1]]},
    )
    code, out = run_doctor(capsys)
    assert code == 1
    assert "environment registry lacks the tracking server's MLFLOW_TRACKING_URI and a user (the writer)" in out
    assert f"gh secret set MLFLOW_TRACKING_USERNAME --env registry --repo {REPO}" in out


def test_an_unprotected_main_is_refused_and_classic_protection_counts(github, capsys):
    github.routes["rules/branches/main"] = (
        200,
        [rule for rule in fixture("branch-rules.json") if rule["type"] == "required_status_checks"],
    )
    code, out = run_doctor(capsys)
    assert code == 1
    assert "branch main lacks pull_request, non_fast_forward, deletion" in out
    assert f"gh api -X POST repos/{REPO}/rulesets --input -" in out

    protection = fixture("branch-protection.json")  # GitHub's example: reviews required, no force push, no deletion
    github.routes["branches/main/protection"] = (200, protection)
    code, out = run_doctor(capsys)
    assert code == 0, out
    protection["allow_force_pushes"]["enabled"] = True
    code, out = run_doctor(capsys)
    assert code == 1
    assert "branch main lacks non_fast_forward" in out


def test_merging_without_approval_is_refused(github, capsys):
    rules = fixture("branch-rules.json")
    next(rule for rule in rules if rule["type"] == "pull_request")["parameters"]["required_approving_review_count"] = 0
    github.routes["rules/branches/main"] = (200, rules)
    code, out = run_doctor(capsys)
    assert code == 1
    assert "pull requests need no approving review" in out


def test_an_oidc_subject_without_the_environment_is_refused(github, capsys):
    github.routes["actions/oidc/customization/sub"] = (
        200,
        {"use_default": False, "include_claim_keys": ["repo", "job_workflow_ref"]},
    )
    code, out = run_doctor(capsys)
    assert code == 1
    assert "the OIDC subject claim has no environment" in out
    assert f"gh api -X PUT repos/{REPO}/actions/oidc/customization/sub -F use_default=true" in out
    github.routes["actions/oidc/customization/sub"] = (
        200,
        {"use_default": False, "include_claim_keys": ["repo", "context"]},
    )
    assert run_doctor(capsys)[0] == 0


def test_the_doctor_environment_needs_its_token(github, capsys):
    github.routes["environments/doctor/secrets"] = (200, {"total_count": 0, "secrets": []})
    code, out = run_doctor(capsys)
    assert code == 1
    assert "environment doctor lacks the secret DOCTOR_TOKEN" in out


def test_a_setting_it_cannot_read_is_not_taken_as_set(github, capsys):
    github.routes["actions/secrets"] = (403, {"message": "Resource not accessible by integration", "status": "403"})
    code, out = run_doctor(capsys)
    assert code == 1
    assert (
        "could not read the secrets' names: GET actions/secrets: HTTP 403 Resource not accessible by integration" in out
    )
    assert "read-only Actions, Administration, Environments and Secrets" in out


def test_a_wrong_token_or_missing_settings_are_usage_errors(github, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    code, out = run_doctor(capsys)
    assert code == 1 and "HTTP 401 Bad credentials" in out
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.delenv("GH_TOKEN", raising=False)
    assert run_doctor(capsys)[0] == 2
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    assert run_doctor(capsys, "--repo", "not a repo")[0] == 2
    assert run_doctor(capsys, "--repo", REPO)[0] == 0
