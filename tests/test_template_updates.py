"""Keeping generated repositories in step with the template: cruft create, check and update."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import SLUG, TEMPLATE

GIT = ["git", "-c", "user.name=Template Test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"]
CRUFT = [str(Path(sys.executable).parent / "cruft")]


def sh(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def commit_all(folder: Path, message: str) -> None:
    sh([*GIT, "add", "-A"], folder)
    sh([*GIT, "commit", "-q", "-m", message], folder)


def template_copy(folder: Path) -> Path:
    """The template's own files only: never a test cache, a venv or a container store under .cache/."""
    listed = sh(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], TEMPLATE).stdout
    for name in filter(None, listed.split("\0")):
        source = TEMPLATE / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    sh([*GIT, "init", "-q"], folder)
    commit_all(folder, "template v1")
    return folder


def test_cruft_update_brings_template_changes_and_keeps_user_edits(tmp_path):
    template = template_copy(tmp_path / "template")
    sh([*CRUFT, "create", str(template), "--no-input", "--output-dir", str(tmp_path / "projects")], tmp_path)
    project = tmp_path / "projects" / SLUG
    assert (project / ".cruft.json").is_file()
    sh([*GIT, "init", "-q"], project)
    commit_all(project, "generated")

    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Our team's notes\n\nKept across template updates.\n")
    commit_all(project, "user edit")
    sh([*CRUFT, "check"], project)  # nothing new in the template yet

    generated = template / "{{cookiecutter.project_slug}}"
    (generated / "CONTRIBUTING.md").write_text("# Contributing to {{ cookiecutter.project_name }}\n")
    drift = generated / ".github" / "workflows" / "template-drift.yml"
    drift.write_text(drift.read_text().replace('cron: "17 6 * * 1"', 'cron: "17 6 * * 3"'))
    commit_all(template, "template v2: contributing guide, drift check moved to Wednesday")

    assert sh([*CRUFT, "check"], project, check=False).returncode != 0
    sh([*CRUFT, "update", "--skip-apply-ask"], project)

    assert (project / "CONTRIBUTING.md").read_text() == "# Contributing to Credit Model\n"
    assert 'cron: "17 6 * * 3"' in (project / ".github" / "workflows" / "template-drift.yml").read_text()
    assert "Our team's notes" in readme.read_text()
    commit_all(project, "template update")
    sh([*CRUFT, "check"], project)


def test_a_plain_cookiecutter_bake_is_ready_for_cruft(tmp_path):
    """`cookiecutter <template>` (not `cruft create`) leaves the .cruft.json that template-drift.yml's
    `cruft check` and `cruft update` need: the post-generation hook writes it as cruft would."""
    template = template_copy(tmp_path / "template")
    head = sh(["git", "rev-parse", "HEAD"], template).stdout.strip()
    # A relative template path, from the folder the user is in: the hook resolves it as cruft does.
    cookiecutter = [str(Path(sys.executable).parent / "cookiecutter")]
    sh([*cookiecutter, "template", "--no-input", "--output-dir", "projects"], tmp_path)
    project = tmp_path / "projects" / SLUG
    state = json.loads((project / ".cruft.json").read_text())
    assert (state["template"], state["commit"]) == (str(template), head)
    assert state["context"]["cookiecutter"]["project_slug"] == SLUG
    sh([*GIT, "init", "-q"], project)
    commit_all(project, "generated")

    sh([*CRUFT, "check"], project)
    # Exit 0: the bake is what the template at that commit makes (its output is the hook's greeting only).
    same = sh([*CRUFT, "diff", "--exit-code"], project)
    assert "diff --git" not in same.stdout, same.stdout

    generated = template / "{{cookiecutter.project_slug}}"
    (generated / "CONTRIBUTING.md").write_text("# Contributing to {{ cookiecutter.project_name }}\n")
    commit_all(template, "template v2: contributing guide")
    assert sh([*CRUFT, "check"], project, check=False).returncode != 0
    sh([*CRUFT, "update", "--skip-apply-ask"], project)
    assert (project / "CONTRIBUTING.md").read_text() == "# Contributing to Credit Model\n"
