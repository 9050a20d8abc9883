"""The tabular family's tests share contract_model.py (beside this file): tests in the subfolders import it by
name, so this folder is put on the import path for them (pytest only adds each test file's own folder)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
