"""The tabular family's tests share contract_model.py and unit_configs.py (beside this file): tests in the
subfolders import them by name, so this folder is put on the import path for them (pytest only adds each test
file's own folder).

TenSEAL crashes the process (SIGSEGV) when it first runs after torch, Opacus or TensorFlow were loaded in it,
so the tests that run it in this process (test_encrypted.py) go first, whatever the files' names and folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

RUNS_TENSEAL_IN_PROCESS = ("test_encrypted.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in RUNS_TENSEAL_IN_PROCESS)  # stable: the rest keep their order
