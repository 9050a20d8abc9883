"""Glue between the stages and GitHub Actions: job outputs and the pull-request comment.

The workflows stay thin: they call `ci-outputs` after a stage to publish what the stage wrote
(outputs/run.json, outputs/gate.json) as step outputs, and `pr-comment-body` to turn the gate
report into the one comment a pull request shows. No ML logic here, only file reading and text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

MARKER = "<!-- {{ cookiecutter.package_name }}-gate-report -->"


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SystemExit(f"error: {path} is not valid JSON ({error}); re-run the stage that writes it") from error


def outputs(folder: Path) -> dict[str, str]:
    """run_id / verdict / model_version as plain strings ("" when the stage has not run)."""
    run = _read_json(folder / "run.json") or {}
    gate = _read_json(folder / "gate.json")
    values = {"run_id": str(run.get("run_id") or (gate or {}).get("run_id") or "")}
    if gate is not None:
        values["verdict"] = "passed" if gate.get("passed") else "failed"
        values["model_version"] = str(gate.get("model_version") or "")
    else:
        values.update(verdict="", model_version="")
    return values


def write_outputs(values: dict[str, str], target: str | None) -> None:
    lines = "".join(f"{key}={value}\n" for key, value in values.items())
    if target:
        with open(target, "a") as handle:  # GITHUB_OUTPUT is appended to, one key=value per line
            handle.write(lines)
    else:
        sys.stdout.write(lines)


def run_url() -> str:
    server, repository, run = (os.environ.get(name, "") for name in
                               ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else ""


def comment_body(folder: Path, url: str, sha: str = "") -> str:
    """The PR comment: the marker (how the workflow finds its own comment again), then the report."""
    report = folder / "gate.md"
    lines = [MARKER]
    if report.is_file():
        lines.append(report.read_text().rstrip())
    else:
        lines.append("## Gate: did not run\n\nThe pipeline stopped before the gate (validation or training "
                     "failed); see the workflow run.")
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
    """`ci-outputs`: publish run_id / verdict / model_version to $GITHUB_OUTPUT (stdout without it)."""
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="folder the stages wrote to")


def run(args: argparse.Namespace) -> int:
    values = outputs(args.outputs)
    if not values["run_id"]:
        print(f"error: no run id in {args.outputs}/run.json or gate.json: run `train` first", file=sys.stderr)
        return 2
    write_outputs(values, os.environ.get("GITHUB_OUTPUT"))
    return 0


def add_comment_arguments(parser: argparse.ArgumentParser) -> None:
    """`pr-comment-body`: the Markdown of the pull-request comment, with its hidden marker."""
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="folder with gate.md")
    parser.add_argument("--run-url", default=None, help="link to the workflow run (default: from GITHUB_* env)")
    parser.add_argument("--output", type=Path, default=None, help="write here instead of stdout")


def run_comment(args: argparse.Namespace) -> int:
    body = comment_body(args.outputs, args.run_url if args.run_url is not None else run_url(),
                        os.environ.get("GITHUB_SHA", ""))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(body)
    else:
        sys.stdout.write(body)
    return 0


# name -> (help, add_arguments, run): what cli.py registers as subcommands.
COMMANDS = {
    "ci-outputs": ("write run_id / verdict / model_version to $GITHUB_OUTPUT", add_arguments, run),
    "pr-comment-body": ("the pull-request comment (gate report + marker) as Markdown",
                        add_comment_arguments, run_comment),
}
