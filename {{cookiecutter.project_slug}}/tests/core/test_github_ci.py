"""github_ci: job outputs (shape-checked), the release's commit check, and the pull-request comment."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.ops import github_ci

RUN = "0123456789abcdef0123456789abcdef"


def write(folder, name, content):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))


def test_outputs_after_train_only(tmp_path):
    write(tmp_path, "run.json", {"run_id": RUN})
    assert github_ci.outputs(tmp_path) == {"run_id": RUN, "verdict": "", "model_version": "", "onnx_sha256": ""}


def test_outputs_after_gate_and_register(tmp_path):
    write(tmp_path, "run.json", {"run_id": RUN})
    write(tmp_path, "gate.json", {"passed": False, "run_id": RUN})
    assert github_ci.outputs(tmp_path)["verdict"] == "failed"
    write(tmp_path, "gate.json", {"passed": True, "run_id": RUN})
    write(tmp_path, "registered.json", {"run_id": RUN, "model_version": "3", "onnx_sha256": "d" * 64})
    assert github_ci.outputs(tmp_path) == {
        "run_id": RUN,
        "verdict": "passed",
        "model_version": "3",
        "onnx_sha256": "d" * 64,
    }
    # A version registered from an earlier run says nothing about this one.
    write(tmp_path, "registered.json", {"run_id": "f" * 32, "model_version": "2"})
    assert github_ci.outputs(tmp_path)["model_version"] == ""


def test_ci_outputs_appends_to_github_output(tmp_path, monkeypatch):
    write(tmp_path / "outputs", "run.json", {"run_id": RUN})
    target = tmp_path / "out"
    target.write_text("earlier=1\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(target))
    assert main(["ci-outputs", "--outputs", str(tmp_path / "outputs")]) == 0
    assert target.read_text() == f"earlier=1\nrun_id={RUN}\nverdict=\nmodel_version=\nonnx_sha256=\n"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("run_id", RUN + "\nmode=registry"),
        ("run_id", "abc<<EOF"),
        ("model_version", "1\nverdict=passed"),
        ("model_version", "01"),
        ("onnx_sha256", "e" * 63),
        ("verdict", "passed\n"),
        ("path", "outputs/model.onnx\nx=y"),
        ("unknown", "1"),
    ],
)
def test_values_of_the_wrong_shape_never_reach_github_output(tmp_path, monkeypatch, key, value):
    target = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(target))
    with pytest.raises(UsageError, match="refusing to publish"):
        github_ci.publish({"model_version": "1", key: value})
    assert not target.exists()  # checked before anything is written: no half-published outputs


def test_ci_outputs_refuses_a_tampered_run_file(tmp_path, monkeypatch, capsys):
    write(tmp_path / "outputs", "run.json", {"run_id": "abc\nmodel_version<<EOF"})
    target = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(target))
    assert main(["ci-outputs", "--outputs", str(tmp_path / "outputs")]) == 2
    assert "refusing to publish run_id=" in capsys.readouterr().err and not target.exists()


def git(folder, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True).stdout.strip()


def test_only_commits_on_the_protected_branch_may_be_released(tmp_path, capsys):
    git(tmp_path, "init", "-q", "-b", "main")
    merged = git(tmp_path, "commit", "-q", "--allow-empty", "-m", "on main")
    git(tmp_path, "checkout", "-q", "-b", "feature")
    unmerged = git(tmp_path, "commit", "-q", "--allow-empty", "-m", "not merged")
    assert github_ci.commit_on_branch(merged, "main", tmp_path)
    assert not github_ci.commit_on_branch(unmerged, "main", tmp_path)
    assert main(["commit-on-branch", "--sha", unmerged, "--repository", str(tmp_path)]) == 1
    assert "is not on main" in capsys.readouterr().err
    assert main(["commit-on-branch", "--sha", merged, "--repository", str(tmp_path)]) == 0
    assert main(["commit-on-branch", "--sha", merged, "--branch", "release", "--repository", str(tmp_path)]) == 2
    assert "fetch-depth: 0" in capsys.readouterr().err


def test_a_release_tag_is_new_or_already_on_the_released_commit(tmp_path, capsys):
    """A tag someone pushed by hand on a commit outside main is refused, not reused or moved."""
    git(tmp_path, "init", "-q", "-b", "main")
    merged = git(tmp_path, "commit", "-q", "--allow-empty", "-m", "on main")
    git(tmp_path, "checkout", "-q", "-b", "feature")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "never reviewed")
    git(tmp_path, "tag", "v1.0.0")
    git(tmp_path, "checkout", "-q", "main")
    release = ["commit-on-branch", "--sha", merged, "--repository", str(tmp_path), "--tag"]
    capsys.readouterr()
    assert main([*release, "v1.0.1"]) == 0
    assert capsys.readouterr().out.endswith("tag=v1.0.1\n")
    assert main([*release, "v1.0.0"]) == 1
    assert "tag v1.0.0 already exists on commit" in capsys.readouterr().err
    git(tmp_path, "tag", "v1.0.2", merged)  # a re-run of the release that made it
    assert main([*release, "v1.0.2"]) == 0
    for bad in ("1.0.3", "v1.0", "v1.0.3\ntag=v9.9.9", "v1.0.3-rc1"):
        assert main([*release, bad]) == 1, bad
        assert "a release tag is v<major>.<minor>.<patch>" in capsys.readouterr().err


def test_onnx_digest_publishes_the_files_sha256(tmp_path, capsys):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx bytes")
    assert main(["onnx-digest", "--model", str(model)]) == 0
    assert capsys.readouterr().out == f"onnx_sha256={hashlib.sha256(b'onnx bytes').hexdigest()}\n"
    assert main(["onnx-digest", "--model", str(tmp_path / "missing.onnx")]) == 2


def test_ci_outputs_without_a_run_is_a_usage_error(tmp_path, capsys):
    assert main(["ci-outputs", "--outputs", str(tmp_path)]) == 2
    assert "run `train` first" in capsys.readouterr().err


def test_comment_starts_with_the_marker_and_links_the_run(tmp_path, monkeypatch):
    write(tmp_path, "gate.md", "## Gate: PASSED - m\n\n| check | value |\n")
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef")
    body_file = tmp_path / "body.md"
    assert (
        main(
            ["pr-comment-body", "--outputs", str(tmp_path), "--run-url", "https://x/runs/1", "--output", str(body_file)]
        )
        == 0
    )
    body = body_file.read_text()
    assert body.splitlines()[0] == github_ci.MARKER == "<!-- {{ cookiecutter.package_name }}-gate-report -->"
    assert "## Gate: PASSED" in body and "[workflow run](https://x/runs/1)" in body and "`0123456789ab`" in body


def test_comment_when_the_gate_never_ran(tmp_path):
    body = github_ci.comment_body(tmp_path, "")
    assert body.startswith(github_ci.MARKER) and "did not run" in body
