"""Tags come from main: a release is a run of main's own release.yml (workflow_dispatch), which checks
main's commit with main's code and creates the tag itself. A pushed tag starts nothing, and a tag
someone pushed on a commit outside main is refused before any job that holds the registry writer's or
a deployment's credentials.

Run under act with the real actions (act_support.py). What act cannot show, GitHub refusing the
`registry`, `staging` and `production` environments to every ref but main (their deployment branch
policies), is checked by reading the workflows (last test) and documented in the generated README
("Trust model"); act gives every secret to every job.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from act_support import run_act
from conftest import SLUG

OWNER = "your-org"  # cookiecutter.json's github_owner
RESOLVE = "Check the commit and pick the verified model"
# Jobs that hold the registry writer's credentials or deploy (or build what is deployed).
PRIVILEGED = ("train", "gate", "export", "register", "image", "model-card", "deploy-staging", "deploy-production")
PRIVILEGED += ("approve-production", "promote")


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def repository(baked, tmp_path_factory) -> tuple[Path, str, str]:
    """A committed copy of the default bake on main, and a branch `feature` one commit ahead that was
    never merged, carrying a tag v1.0.0 pushed by hand: (folder, main's commit, the feature commit).

    act 0.2.89's workflow schema predates GitHub's `queue: max`; the copy drops that line (actionlint
    and the workflow JSON schema check it statically, test_workflows.py)."""
    folder = tmp_path_factory.mktemp("release-trust") / SLUG
    shutil.copytree(baked(), folder)
    release = folder / ".github" / "workflows" / "release.yml"
    release.write_text(release.read_text().replace("      queue: max\n", ""))
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "baked")
    git(folder, "remote", "add", "origin", f"https://github.com/{OWNER}/{SLUG}")  # act's github.repository
    main_sha = git(folder, "rev-parse", "HEAD")
    git(folder, "checkout", "-q", "-b", "feature")
    git(folder, "commit", "-q", "--allow-empty", "-m", "never reviewed, never merged")
    feature_sha = git(folder, "rev-parse", "HEAD")
    git(folder, "tag", "v1.0.0")
    git(folder, "checkout", "-q", "main")
    return folder, main_sha, feature_sha


def act(
    repository: Path, folder: Path, event_name: str, event: dict, tools: Path, job: str | None = None
) -> tuple[subprocess.CompletedProcess, str]:
    path = folder / "event.json"
    path.write_text(json.dumps(event))
    result = run_act(repository, folder, event_name, job, "release.yml", path, tools=tools)
    return result, result.stdout + result.stderr


def job_results(log: str) -> dict[str, str]:
    """{job label: succeeded|failed} for every job act finished ([release/<name>] or [<job>/<job>/<name>])."""
    return dict(re.findall(r"\[([^\]]+)\]\s+🏁\s+Job (succeeded|failed)", log))


def test_a_pushed_tag_starts_no_release(repository, tmp_path, act_tools):
    """On GitHub a workflow a tag starts runs the tagged commit's code; release.yml has no such trigger."""
    folder, _, feature_sha = repository
    git(folder, "checkout", "-q", "v1.0.0")
    try:
        result, log = act(folder, tmp_path, "push", {"ref": "refs/tags/v1.0.0", "after": feature_sha}, act_tools)
    finally:
        git(folder, "checkout", "-q", "main")
    assert "Could not find any stages to run" in log, log[-4000:]
    assert job_results(log) == {}, log[-4000:]


def test_a_tag_on_a_commit_outside_main_is_refused_before_any_writer_or_staging_job(repository, tmp_path, act_tools):
    """The whole release, started on main with the name of the tag already on the feature commit:
    main's code refuses it in `resolve`, and no job after it runs."""
    folder, main_sha, feature_sha = repository
    event = {"ref": "refs/heads/main", "inputs": {"tag": "v1.0.0", "model-version": ""}}
    result, log = act(folder, tmp_path, "workflow_dispatch", event, act_tools)
    assert result.returncode != 0, log[-8000:]
    assert f"tag v1.0.0 already exists on commit {feature_sha}, not on {main_sha}" in log, log[-8000:]
    assert job_results(log) == {f"release/{RESOLVE}": "failed"}, log[-8000:]
    assert "mode=" not in log  # stopped before looking for a model to ship


def test_a_release_from_another_branch_is_refused_before_checkout(repository, tmp_path, act_tools):
    """A run of the branch's own release.yml: GitHub's environment policies refuse it the writer and the
    deployments (not visible under act); main's release.yml itself stops at its first step."""
    folder, _, _ = repository
    git(folder, "checkout", "-q", "feature")
    try:
        event = {"ref": "refs/heads/feature", "inputs": {"tag": "v1.0.1", "model-version": ""}}
        result, log = act(folder, tmp_path, "workflow_dispatch", event, act_tools)
    finally:
        git(folder, "checkout", "-q", "main")
    assert "run the release from main, not refs/heads/feature" in log, log[-8000:]
    assert job_results(log) == {f"release/{RESOLVE}": "failed"}, log[-8000:]
    assert not re.search(r"Run Main actions/checkout@", log), "nothing of the branch is checked out"


def test_a_new_tag_for_mains_commit_passes_the_check(repository, tmp_path, act_tools):
    """The same check lets a release through: main's commit, a tag no one has made yet."""
    folder, main_sha, _ = repository
    event = {"ref": "refs/heads/main", "inputs": {"tag": "v1.0.1", "model-version": ""}}
    result, log = act(folder, tmp_path, "workflow_dispatch", event, act_tools, job="resolve")
    assert result.returncode == 0, log[-8000:]
    assert f"commit {main_sha} is on main" in log and "tag=v1.0.1" in log, log[-8000:]
    assert "mode=retrain" in log  # no tracking server configured: the release retrains (README)


def test_only_main_reaches_the_writer_and_deployment_environments(baked):
    """What GitHub enforces and act cannot: which environments each job names, and that no workflow
    a tag can start names one of them. The environments' deployment branch policies (main only) are
    the repository's settings (README, "Trust model"); `doctor` reads them from GitHub."""
    project = baked()
    folder = project / ".github" / "workflows"
    guarded = {"registry", "staging", "production"}
    for path in sorted(folder.glob("*.yml")):
        spec = yaml.safe_load(path.read_text())
        triggers = spec[True]  # PyYAML reads the key `on` as True
        push = triggers.get("push") if isinstance(triggers, dict) else None
        assert not (push and "tags" in push), f"{path.name}: a tag push would run the tagged commit's code"
    release = yaml.safe_load((folder / "release.yml").read_text())
    assert set(release[True]) == {"workflow_dispatch"}
    assert set(release[True]["workflow_dispatch"]["inputs"]) == {"tag", "model-version"}
    jobs = release["jobs"]
    assert jobs["resolve"]["environment"] == "tracking-read"
    first = jobs["resolve"]["steps"][0]
    assert first["name"] == "Only the protected branch is released" and "refs/heads/$PROTECTED_BRANCH" in first["run"]

    # Every job after resolve needs it, directly or through a job that does: none runs when it fails.
    def needs(name: str) -> set[str]:
        direct = jobs[name].get("needs") or []
        direct = {direct} if isinstance(direct, str) else set(direct)
        return direct.union(*(needs(need) for need in direct))

    for name, job in jobs.items():
        if name != "resolve":
            assert "resolve" in needs(name), name
        environment = job.get("environment") or (job.get("with") or {}).get("environment")
        if environment in guarded:
            assert name in PRIVILEGED, name
    readme = (project / "README.md").read_text()
    for environment in sorted(guarded):
        assert re.search(rf"`{environment}`: deployment branches \*\*`main` only\*\*", readme), environment
    assert "v*.*.*" not in readme.split("## Trust model")[1].split("## ")[0]
