"""Apply `ruff check --fix` and `ruff format` to the template's Python files.

The template's files hold Jinja placeholders, so ruff cannot read them as they are. This bakes the
template once per framework and once per other choice of deploy_target and train_on, formats the baked files, and
writes each one back with the placeholders restored. A file is written back only if the round trip
is exact: baking the result again must give the formatted file byte for byte. Files holding Jinja
blocks (`{% if %}`) are left alone: one bake renders only one branch of them.

    .venv/bin/python scripts/format_project.py          (then review `git diff`)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT = TEMPLATE / "{{cookiecutter.project_slug}}"
PACKAGE_DIR = "{{cookiecutter.package_name}}"
FOLDERS = ("src", "tests", "bench")
RUFF = str(Path(sys.executable).parent / "ruff")


def placeholders(context: dict) -> list[tuple[str, str]]:
    """(rendered, placeholder) pairs, longest rendered text first so no pair eats part of another."""
    pairs = [
        (context["description"], "{{ cookiecutter.description }}"),
        (context["package_name"], "{{ cookiecutter.package_name }}"),
        (context["project_slug"], "{{ cookiecutter.project_slug }}"),
    ]
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def restore(text: str, template_text: str, pairs: list[tuple[str, str]], task: str) -> str:
    for rendered, placeholder in pairs:
        text = text.replace(rendered, placeholder)
    # Lines that hold the task: put back exactly the template's line.
    for line in template_text.splitlines():
        if "{{ cookiecutter.task }}" in line:
            text = text.replace(line.replace("{{ cookiecutter.task }}", task), line)
    return text


def main() -> int:
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    written = 0
    # Each framework once, and the files only another deployment target or training place generates.
    variants = [{"framework": framework} for framework in defaults["framework"]]
    variants += [{option: choice} for option in ("deploy_target", "train_on") for choice in defaults[option][1:]]
    for variant in variants:
        with tempfile.TemporaryDirectory() as folder:
            baked = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=folder, extra_context=variant))
            context = {
                "description": defaults["description"],
                "project_slug": baked.name,
                "package_name": baked.name.replace("-", "_"),
            }
            task = defaults["task"][0]
            folders = [str(baked / name) for name in FOLDERS]
            subprocess.run([RUFF, "check", "--fix", "--quiet", *folders], cwd=baked, check=False)
            subprocess.run([RUFF, "format", "--quiet", *folders], cwd=baked, check=True)
            for path in sorted(p for name in FOLDERS for p in (baked / name).rglob("*.py")):
                relative = (
                    path.relative_to(baked)
                    .as_posix()
                    .replace(f"src/{context['package_name']}/", f"src/{PACKAGE_DIR}/", 1)
                )
                source = PROJECT / relative
                if not source.is_file():
                    continue
                original = source.read_text()
                candidate = restore(path.read_text(), original, placeholders(context), task)
                if candidate == original:
                    continue
                if "{%" in original:
                    # A Jinja block's other branches are not in this bake: writing it back would drop them.
                    print(f"skipped {relative}: it has Jinja blocks (check it with ruff in a bake)", file=sys.stderr)
                    continue
                source.write_text(candidate)
                check = Path(
                    cookiecutter(
                        str(TEMPLATE),
                        no_input=True,
                        output_dir=folder + "/check",
                        extra_context=variant,
                        overwrite_if_exists=True,
                    )
                )
                rebaked = check / path.relative_to(baked)
                if rebaked.read_text() != path.read_text():
                    source.write_text(original)
                    print(f"skipped {relative}: the placeholders do not round-trip", file=sys.stderr)
                    continue
                written += 1
                print(f"formatted {relative}")
    print(f"{written} files written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
