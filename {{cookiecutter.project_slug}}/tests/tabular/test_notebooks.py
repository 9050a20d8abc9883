"""Notebooks are committed without outputs: a rerun must not show up as a diff, nor put data into git.

The pre-commit hook (nbstripout) strips them on commit; this test catches a notebook committed without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))


def leftovers(notebook: dict) -> list[str]:
    """What a notebook still holds from being run: outputs and execution counts, cell by cell."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {index}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {index}: execution count {cell['execution_count']}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebooks_are_committed_without_outputs(path):
    found = leftovers(json.loads(path.read_text()))
    assert not found, (
        f"{path.relative_to(PROJECT)} was saved with what a run left in it ({'; '.join(found)}): "
        f"run `nbstripout {path.relative_to(PROJECT)}` (`make pre-commit` installs the hook that does it on commit)"
    )


def test_a_notebook_saved_after_a_run_is_caught():
    ran = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# title"},
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": "x = 1"},
            {
                "cell_type": "code",
                "execution_count": 3,
                "metadata": {},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
                "source": "print(x)",
            },
        ]
    }
    assert leftovers(ran) == ["cell 2: 1 output(s)", "cell 2: execution count 3"]
