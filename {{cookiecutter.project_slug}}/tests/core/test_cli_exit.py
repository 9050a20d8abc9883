"""The command's exit: no collection over every object the libraries made (cli.skip_collection_at_exit)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from {{ cookiecutter.package_name }}.cli import main

PROJECT = Path(__file__).resolve().parents[2]
# Registered before main() runs, so it runs after main's own exit handler (atexit runs last-in, first-out).
PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
from {{ cookiecutter.package_name }}.cli import main
sys.argv = ["{{ cookiecutter.package_name }}", *sys.argv[1:]]
main()
"""


def test_the_command_freezes_its_objects_at_exit_and_in_process_callers_are_left_alone():
    source = os.pathsep.join(filter(None, [str(PROJECT / "src"), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "--help"],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": source},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("frozen at exit: True")
    before = gc.get_freeze_count()
    assert main(["stages"]) == 0  # a test, a notebook or the Databricks job's wrapper calling main() goes on
    assert gc.get_freeze_count() == before == 0
