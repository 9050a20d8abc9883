"""Each bake's docs name only what that bake has.

For every option that changes the docs (each task, each framework, the Azure ML target, training on
Databricks), the bake's READMEs, Makefile and workflows are read, and every command, `make` target, file
or folder, link and section they name must exist in that bake:
- commands: `python -m <package> <command>` and `<package> <command>` in code, checked against the CLI's
  own `--help`; a command alone in backticks (`score`) when another bake has it and this one does not;
- `make <target>` in code, against the targets the bake's Makefile defines;
- paths in backticks, and in the Makefile's and workflows' comments: a name that is a file or folder of the
  template's project (whole, or its last parts: `stages/gate.py`, `ci.yml`) must be one of this bake's.
  A name that is no file of the template (an artifact in a run, `outputs/model.onnx`) is not checked: it
  is made at run time;
- Markdown links to files of the bake, and their #anchors, against the target's headings;
- `README, "Section"` in any text file (error messages, workflows, comments) against the READMEs' headings.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from conftest import PACKAGE, SLUG, TEMPLATE, run

PROJECT = TEMPLATE / "{{cookiecutter.project_slug}}"
BAKES = {
    "binary": {"task": "binary", "framework": "sklearn"},  # the contexts test_bake.py bakes, shared through `baked`
    "multiclass": {"task": "multiclass", "framework": "sklearn"},
    "regression": {"task": "regression", "framework": "sklearn"},
    "reinforcement": {"task": "reinforcement", "framework": "pytorch"},  # test_rl.py's
    **{name: {"task": "binary", "framework": name} for name in ("pytorch", "keras", "tensorflow", "ebm")},
    "azureml": {"deploy_target": "azureml"},  # test_azureml.py's
    "databricks": {"train_on": "databricks"},  # test_databricks.py's
}
CODE_COMMAND = re.compile(rf"(?:python -m {PACKAGE}|(?:^|(?<=[`$(]))\s*{PACKAGE}|^\s*{SLUG}) ([a-z][a-z-]+)", re.M)
MAKE = re.compile(r"(?:^|(?<=[`$(;&|]))\s*make ([a-z][a-z-]*)", re.M)
PATH = re.compile(r"^\.?/?([\w.-]+(?:/[\w.-]+)*)/?$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
SECTION = re.compile(r"((?:[\w./-]*/)?README(?:\.md)?), \"([^\"\n]+)\"")
# What the reinforcement-learning bake still names of the tabular family outside its docs: pyproject.toml is
# shared (one dependency list with Jinja blocks; the monitor's scipy and Ray Tune's extra are explained there).
NOT_YET_SPLIT = {
    ("pyproject.toml", "After deployment"),
    ("pyproject.toml", "Hyper-parameter search"),
}


def relative_paths(root: Path) -> set[str]:
    """Every file and folder under root, as paths from it, the package folder under its baked name."""
    found = {str(path.relative_to(root)).replace("{{cookiecutter.package_name}}", PACKAGE) for path in root.rglob("*")}
    return {path for path in found if "__pycache__" not in path and not path.startswith(".venv")}


@cache
def template_paths() -> frozenset[str]:
    # requirements/<lock>.lock becomes requirements.lock in every bake (the hook).
    return frozenset(relative_paths(PROJECT) | {"requirements.lock"})


def names_a_path(name: str, paths: frozenset[str] | set[str]) -> bool:
    return any(path == name or path.endswith("/" + name) for path in paths)


def code_spans(markdown: str) -> list[str]:
    """Inline code and fenced blocks: where the READMEs write commands and paths."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S))
    return fenced + inline


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(markdown: str) -> list[str]:
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    return [title.strip() for title in re.findall(r"^#{1,6} (.+)$", text, re.M)]


def cli_commands(project: Path) -> set[str]:
    """The subcommands the bake's own `--help` lists."""
    listing = run(project, "-m", PACKAGE, "--help", timeout=300).stdout
    return set(re.findall(r"^    ([a-z][a-z-]+)(?:\s|$)", listing, re.M))


def make_targets(project: Path) -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (project / "Makefile").read_text(), re.M))


@pytest.fixture(scope="module")
def bakes(baked) -> dict[str, tuple[Path, set[str]]]:
    return {name: (project := baked(**options), cli_commands(project)) for name, options in BAKES.items()}


def readme_problems(project: Path, commands: set[str], every_command: set[str]) -> list[str]:
    """What a README names in code (commands, make targets, paths) or links to, and the bake lacks."""
    paths, targets, found = relative_paths(project), make_targets(project), []
    for readme in sorted(project.rglob("README.md")):
        where, text = readme.relative_to(project), readme.read_text()
        for span in code_spans(text):
            found += [f"{where}: command `{name}`" for name in CODE_COMMAND.findall(span) if name not in commands]
            found += [f"{where}: `make {name}`" for name in MAKE.findall(span) if name not in targets]
            if span in every_command - commands:
                found.append(f"{where}: `{span}` is a command of other bakes only")
            named = PATH.match(span)
            path_like = named and ("/" in span or "." in span[1:])
            if path_like and names_a_path(named.group(1), template_paths()) and not names_a_path(named.group(1), paths):
                found.append(f"{where}: `{span}` is not in this bake")
        found += [f"{where}: link to {target}: {problem}" for target, problem in link_problems(readme, text)]
    return found


def link_problems(readme: Path, text: str) -> list[tuple[str, str]]:
    found = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, fragment = target.partition("#")
        linked = (readme.parent / file).resolve() if file else readme
        if not linked.exists():
            found.append((target, "no such file"))
        elif fragment and linked.suffix == ".md" and fragment not in map(anchor, headings(linked.read_text())):
            found.append((target, "no such heading"))
    return found


def section_problems(project: Path) -> list[str]:
    """`README, "Section"` anywhere (messages, comments, workflows) must name a heading of a README here."""
    every_title = {title for readme in project.rglob("README.md") for title in headings(readme.read_text())}
    found = []
    for path in sorted(project.rglob("*")):
        if not path.is_file() or path.suffix not in {".py", ".yml", ".yaml", ".md", ".sh", ".toml", ".ipynb", ""}:
            continue
        where = str(path.relative_to(project))
        for file, title in SECTION.findall(path.read_text(errors="replace")):
            named = project / file if "/" in file else None
            known = headings(named.read_text()) if named and named.exists() else every_title
            if title not in known and (where, title) not in NOT_YET_SPLIT:
                found.append(f'{where}: {file}, "{title}": no such section')
    return found


def comment_problems(project: Path) -> list[str]:
    """The Makefile's help and comments and the workflows' comments: the files and targets they name."""
    paths, targets, found = relative_paths(project), make_targets(project), []
    for path in [project / "Makefile", *sorted((project / ".github").rglob("*.yml"))]:
        where = path.relative_to(project)
        text = "\n".join(re.findall(r"#+ (.*)$", path.read_text(), re.M))
        for name in re.findall(r"[\w.-]+(?:/[\w.-]+)*\.(?:ya?ml|py|md|ipynb|csv|json|sh|lock|toml)\b", text):
            if names_a_path(name, template_paths()) and not names_a_path(name, paths):
                found.append(f"{where}: a comment names {name}, not in this bake")
        found += [f"{where}: `make {name}`" for name in MAKE.findall(text) if name not in targets]
    phony = re.findall(r"^\.PHONY:((?:.*\\\n)*.*)$", (project / "Makefile").read_text(), re.M)
    declared = set(" ".join(phony).replace("\\", " ").split())
    found += [f"Makefile: .PHONY names {name}, no target" for name in sorted(declared - targets)]
    return found


def problems_in(project: Path, commands: set[str], every_command: set[str]) -> list[str]:
    found = readme_problems(project, commands, every_command) + section_problems(project) + comment_problems(project)
    return sorted(set(found))


@pytest.mark.parametrize("name", BAKES)
def test_the_docs_name_only_what_the_bake_has(bakes, name):
    project, commands = bakes[name]
    every_command = set().union(*(names for _, names in bakes.values()))
    assert problems_in(project, commands, every_command) == []


def test_the_readmes_are_where_their_folders_are(bakes):
    """A folder's README goes with its folder; the top README stays short."""
    for name, (project, _) in bakes.items():
        top = (project / "README.md").read_text()
        assert len(top.splitlines()) <= 400, f"{name}: README.md has {len(top.splitlines())} lines"
        family = "rl" if name == "reinforcement" else "tabular"
        other = "tabular" if family == "rl" else "rl"
        assert (project / "src" / PACKAGE / family / "README.md").is_file(), name
        assert not (project / "src" / PACKAGE / other).exists(), name
        targets = project / "src" / PACKAGE / "targets"
        assert (targets / "databricks" / "README.md").is_file() == (name == "databricks"), name
        assert (targets / "azureml" / "README.md").is_file() == (name == "azureml"), name
        assert (targets / "kubernetes" / "README.md").is_file() == (name != "azureml"), name
