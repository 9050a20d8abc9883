"""`stages`: each stage's help, written once in the family's stage list, printed and copied where people read it.

README.md's stage table (between its `stages` markers) and the Makefile's `## ` help of the stage
targets are copies of the help in PIPELINE (the family's stages/__init__.py; gate and register are the
core's, in stages/__init__.py): `stages --write` rewrites them (the template's hook runs it at
generation), `stages --check` fails naming what differs (tests/core/test_stage_docs.py runs it). So a stage's help
is edited in its stage list alone, then `python -m {{ cookiecutter.package_name }} stages --write`.
Reads the stage list only: no stage module, MLflow or pandas is imported.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from . import family as families
from .errors import CheckFailed, UsageError

BEGIN = "<!-- stages: the help of the stage list (PIPELINE), written by `stages --write` -->"
END = "<!-- /stages -->"


def rows() -> list[tuple[str, str]]:
    """(command, help) per stage in pipeline order, then `pipeline` itself."""
    stages = [(stage.name, stage.help) for stage in families.stage_list()]
    order = " -> ".join(name for name, _ in stages)
    return [*stages, ("pipeline", f"all of them in order, stopping at the first failure: {order}")]


def markdown_table() -> str:
    lines = ["| `make` target and command | what it does |", "|---|---|"]
    lines += [f"| `{name}` | {help} |" for name, help in rows()]
    return "\n".join(lines)


def with_readme_table(text: str, where: str = "README.md") -> str:
    """`text` with the table between BEGIN and END replaced by the stage list's."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise UsageError(f"{where}: no stage table markers; put {BEGIN} and {END} on lines of their own where it goes")
    return f"{text[: start + len(BEGIN)]}\n{markdown_table()}\n{text[end:]}"


def with_make_help(text: str, where: str = "Makefile") -> str:
    """`text` with each stage target's `## ` help replaced by the stage's own."""
    for name, help in rows():
        target = re.compile(rf"^({re.escape(name)}:[^#\n]*## ).*$", re.MULTILINE)
        if not (found := target.search(text)):
            raise UsageError(f"{where}: no target `{name}:  ## <help>` for the stage {name}; add one like the others")
        text = text[: found.start()] + found.group(1) + help + text[found.end() :]
    return text


def out_of_date(root: Path) -> dict[Path, str]:
    """{file: its text as it should be} for README.md and Makefile under `root` that differ from the stage list."""
    wanted = {}
    for name, rewrite in (("README.md", with_readme_table), ("Makefile", with_make_help)):
        path = root / name
        text = path.read_text()
        if (fixed := rewrite(text, str(path))) != text:
            wanted[path] = fixed
    return wanted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--markdown", action="store_true", help="print README.md's stage table")
    action.add_argument("--write", action="store_true", help="rewrite README.md's table and the Makefile's help")
    action.add_argument("--check", action="store_true", help="exit 1 when README.md or the Makefile differ")
    parser.add_argument("--root", type=Path, default=Path("."), help="the project's folder (default: here)")


def run(args: argparse.Namespace) -> None:
    if args.markdown:
        print(markdown_table())
    elif args.write or args.check:
        stale = out_of_date(args.root)
        if args.check and stale:
            names = ", ".join(str(path) for path in stale)
            raise CheckFailed(f"{names}: stage help differs from the stage list (PIPELINE): run `stages --write`")
        for path, text in stale.items():
            path.write_text(text)
    else:
        for name, help in rows():
            print(f"  {name:<16} {help}")


COMMANDS = {"stages": ("the stages and their help (README.md's table and `make help` copy it)", add_arguments, run)}
