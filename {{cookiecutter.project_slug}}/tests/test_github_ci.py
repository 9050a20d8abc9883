"""github_ci: job outputs and the pull-request comment, from the files the stages write."""

from __future__ import annotations

import json

from {{ cookiecutter.package_name }} import github_ci
from {{ cookiecutter.package_name }}.cli import main


def write(folder, name, content):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))


def test_outputs_after_train_only(tmp_path):
    write(tmp_path, "run.json", {"run_id": "abc"})
    assert github_ci.outputs(tmp_path) == {"run_id": "abc", "verdict": "", "model_version": ""}


def test_outputs_after_a_passing_and_a_failing_gate(tmp_path):
    write(tmp_path, "run.json", {"run_id": "abc"})
    write(tmp_path, "gate.json", {"passed": True, "run_id": "abc", "model_version": "3"})
    assert github_ci.outputs(tmp_path) == {"run_id": "abc", "verdict": "passed", "model_version": "3"}
    write(tmp_path, "gate.json", {"passed": False, "run_id": "abc", "model_version": None})
    assert github_ci.outputs(tmp_path)["verdict"] == "failed"
    assert github_ci.outputs(tmp_path)["model_version"] == ""


def test_ci_outputs_appends_to_github_output(tmp_path, monkeypatch):
    write(tmp_path / "outputs", "run.json", {"run_id": "abc"})
    target = tmp_path / "out"
    target.write_text("earlier=1\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(target))
    assert main(["ci-outputs", "--outputs", str(tmp_path / "outputs")]) == 0
    assert target.read_text() == "earlier=1\nrun_id=abc\nverdict=\nmodel_version=\n"


def test_ci_outputs_without_a_run_is_a_usage_error(tmp_path, capsys):
    assert main(["ci-outputs", "--outputs", str(tmp_path)]) == 2
    assert "run `train` first" in capsys.readouterr().err


def test_comment_starts_with_the_marker_and_links_the_run(tmp_path, monkeypatch):
    write(tmp_path, "gate.md", "## Gate: PASSED - m\n\n| check | value |\n")
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef")
    body_file = tmp_path / "body.md"
    assert main(["pr-comment-body", "--outputs", str(tmp_path), "--run-url", "https://x/runs/1",
                 "--output", str(body_file)]) == 0
    body = body_file.read_text()
    assert body.splitlines()[0] == github_ci.MARKER == "<!-- {{ cookiecutter.package_name }}-gate-report -->"
    assert "## Gate: PASSED" in body and "[workflow run](https://x/runs/1)" in body and "`0123456789ab`" in body


def test_comment_when_the_gate_never_ran(tmp_path):
    body = github_ci.comment_body(tmp_path, "")
    assert body.startswith(github_ci.MARKER) and "did not run" in body
