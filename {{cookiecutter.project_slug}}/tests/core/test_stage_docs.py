"""The stages' help is written once (the stage list: PIPELINE in the family's stages/__init__.py): README.md's
table and the Makefile's `## ` lines are copies that `stages --write` keeps, and these tests fail when a copy
differs."""

import argparse
import re
import shutil
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import family, stage_docs
from {{ cookiecutter.package_name }}.errors import CheckFailed, UsageError

PIPELINE = family.stage_list()

ROOT = Path(__file__).resolve().parents[2]


def command(root: Path, **flags: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    stage_docs.add_arguments(parser)
    return parser.parse_args(["--root", str(root), *(f"--{name}" for name, on in flags.items() if on)])


def test_readme_and_makefile_carry_every_stages_own_help():
    assert stage_docs.out_of_date(ROOT) == {}, "run `make stage-docs` and commit README.md and the Makefile"
    makefile = (ROOT / "Makefile").read_text()
    for stage in PIPELINE:  # what `make help` prints for the stage is the CLI's help
        assert re.search(rf"^{stage.name}:\s+## {re.escape(stage.help)}$", makefile, re.MULTILINE), stage.name
        assert f"| `{stage.name}` | {stage.help} |" in (ROOT / "README.md").read_text()


def test_a_stale_copy_is_found_and_rewritten(tmp_path):
    for name in ("README.md", "Makefile"):
        shutil.copy(ROOT / name, tmp_path / name)
    first = PIPELINE[0]
    readme = (tmp_path / "README.md").read_text().replace(f"| {first.help} |", "| an old description |")
    (tmp_path / "README.md").write_text(readme)
    makefile = (tmp_path / "Makefile").read_text().replace(f"## {first.help}\n", "## an old description\n")
    (tmp_path / "Makefile").write_text(makefile)

    with pytest.raises(CheckFailed, match="README.md, .*Makefile"):
        stage_docs.run(command(tmp_path, check=True))
    stage_docs.run(command(tmp_path, write=True))
    assert stage_docs.out_of_date(tmp_path) == {}
    assert (tmp_path / "README.md").read_text() == (ROOT / "README.md").read_text()
    assert (tmp_path / "Makefile").read_text() == (ROOT / "Makefile").read_text()


def test_a_readme_without_the_table_or_a_stage_without_a_target_is_named():
    with pytest.raises(UsageError, match="no stage table markers"):
        stage_docs.with_readme_table("# A project\n")
    with pytest.raises(UsageError, match=f"no target `{PIPELINE[0].name}:"):
        stage_docs.with_make_help("help:  ## list the targets\n")


def test_the_table_lists_the_stages_in_pipeline_order_then_pipeline(capsys):
    stage_docs.run(command(ROOT, markdown=True))
    names = re.findall(r"^\| `([a-z-]+)` \|", capsys.readouterr().out, re.MULTILINE)
    assert names == [stage.name for stage in PIPELINE] + ["pipeline"]
