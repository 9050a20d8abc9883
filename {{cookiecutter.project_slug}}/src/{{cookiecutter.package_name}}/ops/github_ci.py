"""Glue between the stages and GitHub Actions: job outputs, the release's commit check, the PR comment.

The workflows stay thin: they call `ci-outputs` after a stage to publish what the stage wrote
(outputs/run.json, gate.json, registered.json) as step outputs, `commit-on-branch` before a release,
and `pr-comment-body` to turn the gate report into the one comment a pull request shows.

Every value written to $GITHUB_OUTPUT passes `publish`, which checks it against the shape it must
have: values come from files and from the tracking server, and a newline or a `name<<EOF` in a run
id read from there would otherwise inject outputs into the workflow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .. import lineage
from ..errors import CheckFailed, UsageError

MARKER = "<!-- {{ cookiecutter.package_name }}-gate-report -->"

# name -> the whole value must match (an empty value is allowed where a stage may not have run).
OUTPUT_SHAPES = {
    "run_id": re.compile(r"[0-9a-f]{32}"),
    "verdict": re.compile(r"(passed|failed)?"),
    "model_version": re.compile(r"([1-9][0-9]{0,9})?"),
    "previous_version": re.compile(r"([1-9][0-9]{0,9})?"),
    "onnx_sha256": re.compile(r"([0-9a-f]{64})?"),
    "mode": re.compile(r"registry|retrain"),
    "path": re.compile(r"[\w./-]{1,255}"),
    "server": re.compile(r"builtin|triton"),
    "model_name": re.compile(r"[\w.-]{1,255}"),  # Triton's model (a folder and a URL path segment)
    "tag": re.compile(r"(v[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9})?"),  # a release tag, or none (a redeploy)
}
RELEASE_TAG = re.compile(r"v[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}")


def checked(values: dict[str, str]) -> str:
    """The `key=value` lines for $GITHUB_OUTPUT, or UsageError naming the first value of the wrong shape."""
    for key, value in values.items():
        shape = OUTPUT_SHAPES.get(key)
        if shape is None:
            raise UsageError(f"refusing to publish output {key!r}: not one of {', '.join(OUTPUT_SHAPES)}")
        if not shape.fullmatch(value):
            raise UsageError(
                f"refusing to publish {key}={value!r}: it must match {shape.pattern} "
                "(a value read from the tracking store or outputs/ has been tampered with)"
            )
    return "".join(f"{key}={value}\n" for key, value in values.items())


def publish(values: dict[str, str]) -> None:
    """Checked key=value lines on stdout, and appended to $GITHUB_OUTPUT when running in Actions."""
    lines = checked(values)
    sys.stdout.write(lines)
    if target := os.environ.get("GITHUB_OUTPUT"):
        with open(target, "a") as handle:
            handle.write(lines)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not valid JSON ({error}); re-run the stage that writes it") from error


def outputs(folder: Path) -> dict[str, str]:
    """run_id / verdict / model_version / onnx_sha256 as plain strings ("" when the stage has not run)."""
    run = _read_json(folder / lineage.RUN_FILE) or {}
    gate = _read_json(folder / lineage.GATE_FILE)
    registered = _read_json(folder / lineage.REGISTERED_FILE) or {}
    # Each CI job starts from a fresh checkout: the register job has only what `register` wrote.
    values = {"run_id": str(run.get("run_id") or (gate or {}).get("run_id") or registered.get("run_id") or "")}
    values["verdict"] = "" if gate is None else lineage.PASSED if gate.get("passed") else lineage.FAILED
    # Only a version registered from this very run (a stale file from an earlier run says nothing).
    same_run = registered.get("run_id") == values["run_id"]
    values["model_version"] = str(registered.get("model_version") or "") if same_run else ""
    values["onnx_sha256"] = str(registered.get("onnx_sha256") or "") if same_run else ""
    return values


def commit_on_branch(sha: str, branch: str, repository: Path) -> bool:
    """Whether `sha` is reachable from the branch (its remote-tracking ref in CI, else the local one)."""
    if not re.fullmatch(r"[0-9a-f]{7,40}", sha):
        raise UsageError(f"--sha {sha!r}: give 7 to 40 lowercase hex characters of a commit id")
    for ref in (f"refs/remotes/origin/{branch}", f"refs/heads/{branch}"):
        exists = (
            subprocess.run(
                ["git", "rev-parse", "--verify", "--quiet", ref], cwd=repository, capture_output=True
            ).returncode
            == 0
        )
        if exists:
            return (
                subprocess.run(
                    ["git", "merge-base", "--is-ancestor", sha, ref], cwd=repository, capture_output=True
                ).returncode
                == 0
            )
    raise UsageError(
        f"branch {branch!r} is not in the clone at {repository}: check out with fetch-depth: 0 "
        "so the release can see the protected branch"
    )


def tag_commit(tag: str, repository: Path) -> str | None:
    """The commit an existing tag points at (peeled), or None when the clone has no such tag."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "refs/tags/" + tag + "^{commit}"],  # peeled: an annotated tag too
        cwd=repository,
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def tag_problem(tag: str, sha: str, repository: Path) -> str | None:
    """Why `tag` may not name a release of `sha` (None when it may: new, or already on that commit).

    A release tag is made by the release workflow on main, for main's commit. One that exists already
    and points elsewhere was made by hand (perhaps on a commit main never reviewed): it is refused, not
    moved, and not reused.
    """
    if not RELEASE_TAG.fullmatch(tag):
        return f"--tag {tag!r}: a release tag is v<major>.<minor>.<patch>, e.g. v1.2.3"
    existing = tag_commit(tag, repository)
    if existing is not None and not sha.startswith(existing) and not existing.startswith(sha):
        return (
            f"tag {tag} already exists on commit {existing}, not on {sha}, the commit this release ships: "
            "release tags are created by the release workflow only. Pick a new version, or delete the "
            f"stray tag (git push --delete origin {tag}) after checking who made it"
        )
    return None


def run_url() -> str:
    server, repository, run = (
        os.environ.get(name, "") for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else ""


def comment_body(folder: Path, url: str, sha: str = "") -> str:
    """The PR comment: the marker (how the workflow finds its own comment again), then the report."""
    report = folder / lineage.GATE_REPORT_FILE
    lines = [MARKER]
    if report.is_file():
        lines.append(report.read_text().rstrip())
    else:
        lines.append(
            "## Gate: did not run\n\nThe pipeline stopped before the gate (validation or training "
            "failed); see the workflow run."
        )
    footer = []
    if sha:
        footer.append(f"commit `{sha[:12]}`")
    if url:
        footer.append(f"[workflow run]({url})")
    if footer:
        lines += ["", "_" + " - ".join(footer) + "_"]
    return "\n".join(lines) + "\n"


# --- CLI commands -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`ci-outputs`: publish what the stages wrote to $GITHUB_OUTPUT (and stdout), shape-checked."""
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="folder the stages wrote to")


def run(args: argparse.Namespace) -> None:
    values = outputs(args.outputs)
    if not values["run_id"]:
        raise UsageError(
            f"no run id in {args.outputs}/{lineage.RUN_FILE}, {lineage.GATE_FILE} or "
            f"{lineage.REGISTERED_FILE}: run `train` first"
        )
    publish(values)


def add_branch_arguments(parser: argparse.ArgumentParser) -> None:
    """`commit-on-branch --sha SHA --branch main [--tag vX.Y.Z]`: exit 1 unless the commit is on the
    branch (and the tag is free or already names that commit)."""
    parser.add_argument("--sha", required=True, help="the commit to release (in CI: $GITHUB_SHA)")
    parser.add_argument("--branch", default="main", help="the protected branch (default: main)")
    parser.add_argument("--tag", default="", help="the release tag to create for it (empty: a redeploy, no tag)")
    parser.add_argument("--repository", type=Path, default=Path("."), help="the git clone (default: .)")


def run_branch(args: argparse.Namespace) -> None:
    if not commit_on_branch(args.sha, args.branch, args.repository):
        raise CheckFailed(
            f"commit {args.sha} is not on {args.branch}: only commits merged into the protected "
            f"branch are released. Merge it first, then run the release workflow on {args.branch}."
        )
    print(f"commit {args.sha} is on {args.branch}")
    if args.tag and (problem := tag_problem(args.tag, args.sha, args.repository)):
        raise CheckFailed(problem)
    publish({"tag": args.tag})


def add_digest_arguments(parser: argparse.ArgumentParser) -> None:
    """`onnx-digest`: publish the SHA-256 of the ONNX file export wrote, as export's job output."""
    parser.add_argument("--model", type=Path, default=Path("outputs/model.onnx"), help="default: outputs/model.onnx")


def run_digest(args: argparse.Namespace) -> None:
    # register takes this job output, not the run's tag: the tracking store may be writable by others.
    if not args.model.is_file():
        raise UsageError(f"{args.model}: no ONNX file; run `export` (or `download-onnx`) first")
    publish({"onnx_sha256": lineage.sha256_of(args.model)})


def add_comment_arguments(parser: argparse.ArgumentParser) -> None:
    """`pr-comment-body`: the Markdown of the pull-request comment, with its hidden marker."""
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="folder with gate.md")
    parser.add_argument("--run-url", default=None, help="link to the workflow run (default: from GITHUB_* env)")
    parser.add_argument("--output", type=Path, default=None, help="write here instead of stdout")


def run_comment(args: argparse.Namespace) -> None:
    body = comment_body(
        args.outputs, args.run_url if args.run_url is not None else run_url(), os.environ.get("GITHUB_SHA", "")
    )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(body)
    else:
        sys.stdout.write(body)


# name -> (help, add_arguments, run): what cli.py registers as subcommands.
COMMANDS = {
    "ci-outputs": ("write run_id / verdict / model_version / onnx_sha256 to $GITHUB_OUTPUT", add_arguments, run),
    "commit-on-branch": (
        "fail unless a commit is on the protected branch (what a release may ship)",
        add_branch_arguments,
        run_branch,
    ),
    "onnx-digest": (
        "publish the SHA-256 of outputs/model.onnx as onnx_sha256 (export's job output, which register checks)",
        add_digest_arguments,
        run_digest,
    ),
    "pr-comment-body": (
        "the pull-request comment (gate report + marker) as Markdown",
        add_comment_arguments,
        run_comment,
    ),
}
