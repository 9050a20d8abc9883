"""Each bake's own import-graph check (tests/core/test_import_graph.py there): it passes as generated and
fails, naming the import, when the core imports a family or two modules come to import each other. And its
pure/ check (tests/core/test_pure_layout.py): a family's pure/ modules reach nothing outside the process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import PACKAGE, SLUG, run

CHECK = ("-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", "tests/core/test_import_graph.py")
RL = {"task": "reinforcement", "framework": "pytorch"}


@pytest.mark.parametrize("options", [{}, RL], ids=["tabular", "reinforcement"])
def test_the_generated_import_graph_check_passes(baked, options):
    result = run(baked(**options), *CHECK)
    assert "3 passed" in result.stdout, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("module", "added", "named"),
    [
        # The core's gate reaching into the tabular family instead of taking its checks from the registry.
        (
            "stages/gate.py",
            "from ..tabular.stages import explain  # noqa: F401",
            "stages.gate imports tabular.stages.explain",
        ),
        # lineage is imported by tracking: importing tracking back closes a cycle.
        ("lineage.py", "from . import tracking  # noqa: F401", "lineage <-> tracking"),
    ],
    ids=["core-imports-family", "cycle"],
)
def test_the_generated_check_fails_on_a_forbidden_import(baked, tmp_path, module, added, named):
    assert named in failure_after_adding(baked(), tmp_path, module, added, CHECK)


def failure_after_adding(baked: Path, tmp_path: Path, module: str, added: str, check: tuple[str, ...]) -> str:
    """The bake's check run on a copy of the bake where `module` got the line `added`: it must fail; its output."""
    project = shutil.copytree(baked, tmp_path / SLUG)
    path = project / "src" / PACKAGE / module
    path.write_text(path.read_text() + f"\n{added}\n")
    result = run(project, *check, check=False)
    assert result.returncode == 1, result.stdout[-3000:]
    return result.stdout[-3000:]


PURE_CHECK = (*CHECK[:-1], "tests/core/test_pure_layout.py")


@pytest.mark.parametrize("options", [{}, RL], ids=["tabular", "reinforcement"])
def test_the_generated_pure_folder_check_passes(baked, options):
    result = run(baked(**options), *PURE_CHECK)
    assert "3 passed" in result.stdout, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("module", "added", "named"),
    [
        # A pure module logging to the tracking server: I/O where the path says there is none.
        ("tabular/pure/metrics.py", "import mlflow  # noqa: F401", "tabular.pure.metrics imports mlflow"),
        # A pure module reading through dataio at run time (a type alone belongs under TYPE_CHECKING).
        ("tabular/pure/fairness.py", "from ..dataio import data  # noqa: F401", "imports tabular.dataio.data"),
    ],
    ids=["library", "dataio"],
)
def test_the_generated_pure_folder_check_fails_on_io(baked, tmp_path, module, added, named):
    assert named in failure_after_adding(baked(), tmp_path, module, added, PURE_CHECK)
