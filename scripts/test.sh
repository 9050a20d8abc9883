#!/usr/bin/env bash
# The template's test command (README, .ci/run): system packages, the shared venv, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/setup-venv.sh
export MLFLOW_DISABLE_TELEMETRY=true
exec .venv/bin/python -m pytest tests "$@"
