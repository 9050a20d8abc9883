"""`doctor`: are this repository's GitHub settings the ones the trust model needs? (README, "Trust model")

The workflows declare environments; only the repository's settings make them mean anything: which
refs may deploy to each, who must approve, which secrets live where, what protects `main`, what the
OIDC subject says. `doctor` reads those settings through GitHub's REST API (read-only calls), compares
them with what each environment the workflows use must be, and prints every gap with the command that
closes it. Exit 1 when something required is missing or could not be read (an unread setting is not a
proven one), 0 otherwise; advice is printed either way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import CheckFailed, UsageError

API_VERSION = "2022-11-28"
TIMEOUT_SECONDS = 30.0
# What protects the protected branch (ruleset rule types, or classic branch protection's equivalents).
BRANCH_RULES = {
    "pull_request": "changes reach it only through a reviewed pull request",
    "non_fast_forward": "no force push rewrites its history",
    "deletion": "it cannot be deleted (and re-created from another commit)",
}
TRACKING_SECRETS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
)
# Secrets that belong to an environment: as repository secrets they would reach every branch.
ENVIRONMENT_ONLY_SECRETS = (
    *TRACKING_SECRETS,
    "PREDICTION_LOG_URL",
    "RAY_AUTH_TOKEN",
    "KUBECONFIG",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "DOCTOR_TOKEN",
)
# OIDC subject claim keys that name the repository, and the job's environment (cloud trust per environment).
SUBJECT_REPOSITORY_KEYS = ("repo", "repository", "repository_id")
SUBJECT_ENVIRONMENT_KEYS = ("context", "environment")
EXPRESSION = "${" + "{"  # how a workflow expression opens (split: the template engine reads the pair)


@dataclass(frozen=True)
class Requirement:
    """What an environment must be. `protected`: only the protected branch may deploy to it (no other
    branch, no tag pattern: a tag is whatever commit its pusher chose)."""

    protected: bool
    reviewers: bool = False
    why: str = ""
    secrets: tuple[str, ...] = ()  # besides the tracking server's, checked together in check_secrets


# One row per environment the workflows use. An environment the workflows use that is not here is
# held to the strictest rule (protected branch only) until you add its row.
REQUIREMENTS = {
    "tracking-read": Requirement(
        protected=False, why="read-only credentials, open to every branch and same-repository pull request"
    ),
    "registry": Requirement(protected=True, why="the writer: registers versions and moves aliases"),
    "monitoring": Requirement(
        protected=True,
        why="reads the prediction log (real inputs and labels) as its monitor role",
        secrets=("PREDICTION_LOG_URL",),
    ),
    "scoring": Requirement(
        protected=True, why="writes to the prediction log as its scorer role", secrets=("PREDICTION_LOG_URL",)
    ),
    "staging": Requirement(protected=True, why="deploys to staging"),
    "production-approval": Requirement(protected=True, reviewers=True, why="the approval before production"),
    "production": Requirement(protected=True, why="deploys to production"),
    "doctor": Requirement(
        protected=True, why="holds DOCTOR_TOKEN, which reads the repository's settings", secrets=("DOCTOR_TOKEN",)
    ),
}


@dataclass
class Report:
    missing: list[tuple[str, str]] = field(default_factory=list)  # (what, fix)
    advice: list[tuple[str, str]] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    def need(self, what: str, fix: str) -> None:
        self.missing.append((what, fix))

    def suggest(self, what: str, fix: str) -> None:
        self.advice.append((what, fix))

    def text(self) -> str:
        lines = [*self.facts, ""]
        for title, items in (("MISSING", self.missing), ("advice", self.advice)):
            for what, fix in items:
                lines += [f"{title}: {what}", *(f"    {line}" for line in fix.splitlines()), ""]
        verdict = f"{len(self.missing)} required setting(s) missing" if self.missing else "every required setting holds"
        return "\n".join([*lines, f"doctor: {verdict}, {len(self.advice)} advice"])


class ApiError(Exception):
    def __init__(self, path: str, status: int, message: str):
        super().__init__(f"GET {path}: HTTP {status} {message}")
        self.path, self.status = path, status


class GitHub:
    """Read-only REST calls with a token, against api.github.com or another base (GHES, a test server)."""

    def __init__(self, api_url: str, repository: str, token: str):
        self.api_url, self.repository, self.token = api_url.rstrip("/"), repository, token

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        url = f"{self.api_url}/repos/{self.repository}/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(
            url,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "{{ cookiecutter.project_slug }}-doctor",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (https or a base the user gave)
                return json.load(response)
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", "replace")
            try:
                message = json.loads(body).get("message", body)
            except (ValueError, AttributeError):
                message = body
            raise ApiError(path, error.code, str(message)[:200]) from error
        except urllib.error.URLError as error:
            raise UsageError(f"cannot reach {self.api_url} (--api-url / $GITHUB_API_URL): {error.reason}") from error

    def pages(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a paginated list (`{"total_count": n, key: [...]}`), 100 a page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.get(path, {"per_page": "100", "page": str(page)})
            items += answer[key]
            if not answer[key] or len(items) >= answer["total_count"]:
                return items
            page += 1


def expression_literals(value: str) -> set[str]:
    """The environment names a value can take: itself, or the quoted literals of an expression
    (`cond && 'registry' || 'tracking-read'`); none for `inputs.environment`."""
    if EXPRESSION not in value:
        return {value.strip()} if value.strip() else set()
    names = set()
    for match in re.finditer(r"'([A-Za-z0-9_.-]+)'", value):
        before, after = value[: match.start()].rstrip(), value[match.end() :].lstrip()
        if not (before.endswith(("==", "!=")) or after.startswith(("==", "!="))):  # compared, not chosen
            names.add(match.group(1))
    return names


def environments_used(root: Path) -> dict[str, set[str]]:
    """Environment name -> the workflow files that use it: jobs' `environment:` (a name or `{name: ...}`)
    and the `environment` input jobs pass to the reusable workflows."""
    used: dict[str, set[str]] = {}
    for path in sorted((root / ".github" / "workflows").glob("*.y*ml")):
        workflow = yaml.safe_load(path.read_text()) or {}
        for job in (workflow.get("jobs") or {}).values():
            values = [job.get("environment"), (job.get("with") or {}).get("environment")]
            for value in values:
                if isinstance(value, dict):
                    value = value.get("name")
                if isinstance(value, str):
                    for name in expression_literals(value):
                        used.setdefault(name, set()).add(path.name)
    return used


def environment_fix(repo: str, name: str, requirement: Requirement, branch: str) -> str:
    body: dict[str, Any] = {
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True}
        if requirement.protected
        else None
    }
    if requirement.reviewers:
        body |= {
            "reviewers": [{"type": "Team", "id": "<team id: gh api orgs/ORG/teams/SLUG -q .id>"}],
            "prevent_self_review": True,
        }
    lines = [f"gh api -X PUT repos/{repo}/environments/{name} --input - <<'EOF'", json.dumps(body), "EOF"]
    if requirement.protected:
        lines.append(add_branch(repo, name, branch))
    return "\n".join(lines)


def add_branch(repo: str, name: str, branch: str) -> str:
    return f"gh api -X POST repos/{repo}/environments/{name}/deployment-branch-policies -f name={branch} -f type=branch"


def check_environment(
    github: GitHub, report: Report, environment: dict[str, Any], requirement: Requirement, branch: str
) -> None:
    name, repo = environment["name"], github.repository
    policy = environment.get("deployment_branch_policy")
    if requirement.protected:
        if policy is None:
            report.need(
                f"environment {name} ({requirement.why}) admits every branch and tag: any push can use it",
                environment_fix(repo, name, requirement, branch),
            )
        elif policy.get("protected_branches"):
            report.suggest(
                f"environment {name} admits every protected branch, not only {branch}: "
                "any branch a ruleset protects can use it",
                environment_fix(repo, name, requirement, branch),
            )
        else:
            policies = github.pages(
                f"environments/{urllib.parse.quote(name)}/deployment-branch-policies", "branch_policies"
            )
            admitted = [(item.get("type", "branch"), item["name"]) for item in policies]
            for item, (kind, pattern) in zip(policies, admitted, strict=True):
                if (kind, pattern) != ("branch", branch):
                    risk = (
                        "a tag can point at any commit, reviewed or not" if kind == "tag" else "not the protected one"
                    )
                    report.need(
                        f"environment {name} ({requirement.why}) admits {kind} pattern {pattern!r}: only branch "
                        f"{branch} may use it ({risk})",
                        f"gh api -X DELETE repos/{repo}/environments/{name}/deployment-branch-policies/{item['id']}",
                    )
            if ("branch", branch) not in admitted:
                report.need(
                    f"environment {name} admits no branch {branch}: its jobs cannot run", add_branch(repo, name, branch)
                )
    if requirement.reviewers:
        rules = [rule for rule in environment.get("protection_rules") or [] if rule.get("type") == "required_reviewers"]
        if not rules or not any(rule.get("reviewers") for rule in rules):
            report.need(
                f"environment {name} ({requirement.why}) has no required reviewers: nobody approves",
                environment_fix(repo, name, requirement, branch),
            )
        elif not all(rule.get("prevent_self_review") for rule in rules):
            report.suggest(
                f"environment {name}: whoever starts a deployment may approve it (prevent_self_review is off)",
                environment_fix(repo, name, requirement, branch),
            )


def check_secrets(github: GitHub, report: Report, names: list[str], found: set[str]) -> None:
    """Names only: the API never returns a secret's value, and doctor never asks for one."""
    held: dict[str, set[str]] = {}
    for name in names:
        if name not in found:
            continue
        secrets = github.pages(f"environments/{urllib.parse.quote(name)}/secrets", "secrets")
        held[name] = {secret["name"] for secret in secrets}
        report.facts.append(f"environment {name}: secrets {', '.join(sorted(held[name])) or '(none)'}")
        for secret in REQUIREMENTS.get(name, Requirement(protected=True)).secrets:
            if secret not in held[name]:
                report.need(
                    f"environment {name} lacks the secret {secret}",
                    f"gh secret set {secret} --env {name} --repo {github.repository}",
                )
    repository = {secret["name"] for secret in github.pages("actions/secrets", "secrets")}
    report.facts.append(f"repository secrets: {', '.join(sorted(repository)) or '(none)'}")
    for secret in sorted(repository & set(ENVIRONMENT_ONLY_SECRETS)):
        report.need(
            f"{secret} is a repository secret: every branch's jobs receive it, whatever the environments say",
            f"gh secret delete {secret} --repo {github.repository}   # then set it per environment: "
            f"gh secret set {secret} --env <environment> --repo {github.repository}",
        )
    # A tracking server is configured when either environment names one; then each needs its own user.
    if any("MLFLOW_TRACKING_URI" in held.get(name, set()) for name in ("tracking-read", "registry")):
        for name in ("tracking-read", "registry"):
            if name not in held:
                continue
            names_held = held[name]
            password = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= names_held
            user = password or "MLFLOW_TRACKING_TOKEN" in names_held
            if "MLFLOW_TRACKING_URI" not in names_held or not user:
                report.need(
                    f"environment {name} lacks the tracking server's MLFLOW_TRACKING_URI and a user "
                    f"({'the read-only one' if name == 'tracking-read' else 'the writer'}) while the other has them",
                    "\n".join(
                        f"gh secret set {secret} --env {name} --repo {github.repository}"
                        for secret in TRACKING_SECRETS[:3]
                        if secret not in names_held
                    ),
                )
    else:
        report.facts.append("no tracking server configured (no MLFLOW_TRACKING_URI): runs stay in the embedded store")


def check_branch(github: GitHub, report: Report, branch: str) -> None:
    rules = github.get(f"rules/branches/{urllib.parse.quote(branch)}")
    present = {rule["type"]: rule for rule in rules}
    source = "rulesets"
    if any(rule not in present for rule in BRANCH_RULES):
        # Classic branch protection, for repositories that never moved (wholly) to rulesets.
        try:
            protection = github.get(f"branches/{urllib.parse.quote(branch)}/protection")
        except ApiError as error:
            if error.status != 404:
                raise
        else:
            source = "rulesets and branch protection"
            reviews = protection.get("required_pull_request_reviews")
            if reviews:
                present.setdefault("pull_request", {"parameters": reviews})
            if protection.get("required_status_checks"):
                present.setdefault("required_status_checks", {})
            # Classic protection blocks force pushes and deletion unless they are allowed explicitly.
            if not (protection.get("allow_force_pushes") or {}).get("enabled", False):
                present.setdefault("non_fast_forward", {})
            if not (protection.get("allow_deletions") or {}).get("enabled", False):
                present.setdefault("deletion", {})
    report.facts.append(f"branch {branch}: rules {', '.join(sorted(present)) or '(none)'} ({source})")
    absent = [rule for rule in BRANCH_RULES if rule not in present]
    if absent:
        body = {
            "name": f"protect {branch}",
            "target": "branch",
            "enforcement": "active",
            "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
            "rules": [
                {"type": "deletion"},
                {"type": "non_fast_forward"},
                {
                    "type": "pull_request",
                    "parameters": {
                        "required_approving_review_count": 1,
                        "dismiss_stale_reviews_on_push": True,
                        "require_code_owner_review": False,
                        "require_last_push_approval": True,
                        "required_review_thread_resolution": False,
                    },
                },
            ],
        }
        report.need(
            f"branch {branch} lacks {', '.join(absent)}: "
            + "; ".join(f"{rule}: {BRANCH_RULES[rule]}" for rule in absent),
            f"gh api -X POST repos/{github.repository}/rulesets --input - <<'EOF'\n{json.dumps(body)}\nEOF",
        )
    pull_request = present.get("pull_request")
    if pull_request is not None:
        parameters = pull_request.get("parameters") or {}
        if parameters.get("required_approving_review_count", 0) < 1:
            report.need(
                f"branch {branch}: pull requests need no approving review, so anyone who can push can merge alone",
                "Settings -> Rules -> Rulesets -> the ruleset on "
                f"{branch} -> Require a pull request before merging -> Required approvals: 1 or more",
            )
    if "required_status_checks" not in present:
        report.suggest(
            f"branch {branch} does not require CI to pass before merging",
            "Settings -> Rules -> the ruleset on main -> Require status checks to pass: the `ci` workflow's jobs",
        )


def check_subject(github: GitHub, report: Report, branch: str) -> None:
    subject = github.get("actions/oidc/customization/sub")
    if subject.get("use_default", True):
        report.facts.append("OIDC subject: default (repo:OWNER/REPO:environment:NAME for environment jobs)")
        return
    keys = list(subject.get("include_claim_keys") or [])
    report.facts.append(f"OIDC subject: customised, claims {', '.join(keys) or '(none)'}")
    gaps = []
    if not set(keys) & set(SUBJECT_REPOSITORY_KEYS):
        gaps.append("no repository claim (any repository's token of the same shape would match)")
    if not set(keys) & set(SUBJECT_ENVIRONMENT_KEYS):
        gaps.append("no environment (a cloud identity trusted for `production` would trust every job)")
    if gaps:
        report.need(
            "the OIDC subject claim has " + " and ".join(gaps),
            f"gh api -X PUT repos/{github.repository}/actions/oidc/customization/sub -F use_default=true",
        )


def diagnose(github: GitHub, root: Path, branch: str) -> Report:
    report = Report()
    used = environments_used(root)
    report.facts.append(f"repository {github.repository}; workflows use environments {', '.join(sorted(used))}")
    environments: list[dict[str, Any]] = []
    try:
        environments = github.pages("environments", "environments")
    except ApiError as error:
        report.need(f"could not read the environments: {error}", token_fix(error))
    for what, check in (("branch rules", check_branch), ("OIDC subject", check_subject)):
        try:
            check(github, report, branch)
        except ApiError as error:
            report.need(f"could not read the {what}: {error}", token_fix(error))
    by_name = {environment["name"]: environment for environment in environments}
    for name in sorted(used):
        requirement = REQUIREMENTS.get(name, Requirement(protected=True, why="no row in doctor.REQUIREMENTS"))
        if name not in by_name:
            report.need(
                f"environment {name} does not exist (used by {', '.join(sorted(used[name]))}): GitHub creates it "
                "on first use with no restriction at all",
                environment_fix(github.repository, name, requirement, branch),
            )
            continue
        try:
            check_environment(github, report, by_name[name], requirement, branch)
        except ApiError as error:
            report.need(f"could not read environment {name}'s branch policies: {error}", token_fix(error))
    try:
        check_secrets(github, report, sorted(used), set(by_name))
    except ApiError as error:
        report.need(f"could not read the secrets' names: {error}", token_fix(error))
    return report


def token_fix(error: ApiError) -> str:
    if error.status in (401, 403, 404):
        return (
            "give doctor a token that can read the repository's settings: a fine-grained token on this repository "
            "with read-only Actions, Administration, Environments and Secrets ($GITHUB_TOKEN / $GH_TOKEN; in CI "
            "the secret DOCTOR_TOKEN)"
        )
    return "retry later; GitHub's status page says whether the API is degraded"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", help="owner/name (default: $GITHUB_REPOSITORY)")
    parser.add_argument(
        "--api-url",
        help="REST API base (default: $GITHUB_API_URL, else https://api.github.com; GHES: https://HOST/api/v3)",
    )
    parser.add_argument("--branch", default="main", help="the protected branch (default: main)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the checkout (its .github/workflows)")


def run(args: argparse.Namespace) -> None:
    repository = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise UsageError(f"--repo (or $GITHUB_REPOSITORY) must be owner/name, got {repository!r}")
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if not token:
        raise UsageError("set $GITHUB_TOKEN or $GH_TOKEN to a token that can read the repository's settings")
    api_url = args.api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    if not (args.root / ".github" / "workflows").is_dir():
        raise UsageError(f"{args.root / '.github' / 'workflows'} is not a folder: run doctor from the repository root")
    report = diagnose(GitHub(api_url, repository, token), args.root, args.branch)
    print(report.text())
    if report.missing:
        raise CheckFailed(f"{len(report.missing)} required setting(s) missing (listed above, each with its fix)")


COMMANDS = {
    "doctor": ("check the GitHub settings the trust model needs (environments, rules, secrets)", add_arguments, run),
}
