"""The fast tier's look inside one bake (`scripts/test.sh --fast`): the default bake's own tests without
those it marks `system`, and its ruff without mypy.

The full tier makes both checks whole, so these are deselected there (`fast_only`, tests/tiers.py): the
bake's entire suite in test_generated.py, ruff and mypy for every framework in test_bake.py.
"""

from __future__ import annotations

from conftest import run


def test_default_bake_is_formatted_and_lint_clean(baked):
    project = baked()
    run(project, "-m", "ruff", "format", "--no-cache", "--check", "src", "tests", "bench", "notebooks")
    run(project, "-m", "ruff", "check", "--no-cache", "src", "tests", "bench", "notebooks")


def test_default_bake_unit_tests_pass(baked):
    # A hang guard, not the tier's budget: on a busy machine this alone took over 10 minutes.
    result = run(baked(), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not system", timeout=1800)
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout[-4000:]
