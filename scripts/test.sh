#!/usr/bin/env bash
# The template's test command (README, .ci/run): system packages, the shared venv, then pytest.
#   bash scripts/test.sh           the full suite (what CI runs)
#   bash scripts/test.sh --fast    the fast tier: unit and static checks, a 2-minute budget (tests/tiers.py)
# Other arguments go to pytest. Two pytest-xdist workers by default (TEST_WORKERS=N to change it, 0 for
# none); `--dist loadgroup` keeps together the tests tests/tiers.py groups, longest units first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/setup-venv.sh
export MLFLOW_DISABLE_TELEMETRY=true
# GitHub's runners and users' shells let Python cache bytecode. Some machines turn it off (this one did); a
# bake's venv, installed --no-compile as `make setup` and CI install it, would then compile every module it
# imports again in every process: each act job, each server and each CLI call of a bake's own suite.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest tests -n "${TEST_WORKERS:-2}" --dist loadgroup --no-loadscope-reorder "$@"
