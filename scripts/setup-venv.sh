#!/usr/bin/env bash
# Create (or reuse) .venv with everything the template's tests and the demo need, and .venv-triton.
# Re-running is cheap: pip only runs when a requirements file changed since the venv's last install.
#   bash scripts/setup-venv.sh           both (what scripts/test.sh needs)
#   bash scripts/setup-venv.sh main      .venv only (what scripts/demo.sh needs: no Triton)
set -euo pipefail
cd "$(dirname "$0")/.."

WHICH=${1:-all}
case "$WHICH" in
  all | main) ;;
  *) echo "usage: $0 [all|main]  (all: .venv and .venv-triton; main: .venv only), not '$WHICH'" >&2; exit 2 ;;
esac

VENV=${VENV:-.venv}
TRITON_VENV=${TRITON_VENV:-.venv-triton}
# PyTorch's CPU wheel: a plain `pip install torch` would fetch a multi-GB CUDA build.
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}

# venv_for VENV REQUIREMENTS: create VENV if missing; succeed when REQUIREMENTS changed since its last install.
venv_for() {
  if [ ! -x "$1/bin/python" ]; then
    echo "--> creating $1"
    python3 -m venv "$1"
    "$1/bin/python" -m pip install --quiet --upgrade pip
  fi
  [ "$(cat "$1/.requirements.sha256" 2>/dev/null)" != "$(sha256sum "$2" | cut -d' ' -f1)" ]
}

installed() {
  sha256sum "$2" | cut -d' ' -f1 > "$1/.requirements.sha256"
}

if venv_for "$VENV" requirements-test.txt; then
  echo "--> installing requirements-test.txt into $VENV (a few minutes the first time)"
  # Local wheel first (this machine's disk, or PyTorch's CPU index), then the rest from PyPI.
  "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" \
    || "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
  "$VENV/bin/python" -m pip install --quiet -r requirements-test.txt
  installed "$VENV" requirements-test.txt
fi

# Triton for tests/test_triton.py: nvidia-pytriton bundles a real `tritonserver` (Python backend only)
# and needs numpy<2, so it gets its own venv beside .venv (requirements-triton.txt).
if [ "$WHICH" = all ] && venv_for "$TRITON_VENV" requirements-triton.txt; then
  echo "--> installing requirements-triton.txt into $TRITON_VENV"
  "$TRITON_VENV/bin/python" -m pip install --quiet -r requirements-triton.txt
  installed "$TRITON_VENV" requirements-triton.txt
fi
