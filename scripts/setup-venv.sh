#!/usr/bin/env bash
# Create (or reuse) .venv with everything the template's tests and the demo need.
# Re-running is cheap: pip only installs what requirements-test.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
# PyTorch's CPU wheel: a plain `pip install torch` would fetch a multi-GB CUDA build.
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}

if [ ! -x "$VENV/bin/python" ]; then
  echo "--> creating $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$VENV/.requirements.sha256"
wanted=$(sha256sum requirements-test.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "--> installing requirements-test.txt into $VENV (a few minutes the first time)"
  # Local wheel first (this machine's disk, or PyTorch's CPU index), then the rest from PyPI.
  "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" \
    || "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
  "$VENV/bin/python" -m pip install --quiet -r requirements-test.txt
  echo "$wanted" > "$stamp"
fi

# Triton for tests/test_triton.py: nvidia-pytriton bundles a real `tritonserver` (Python backend only)
# and needs numpy<2, so it gets its own venv beside .venv (requirements-triton.txt).
TRITON_VENV=${TRITON_VENV:-.venv-triton}
if [ ! -x "$TRITON_VENV/bin/python" ]; then
  echo "--> creating $TRITON_VENV"
  python3 -m venv "$TRITON_VENV"
  "$TRITON_VENV/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$TRITON_VENV/.requirements.sha256"
wanted=$(sha256sum requirements-triton.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "--> installing requirements-triton.txt into $TRITON_VENV"
  "$TRITON_VENV/bin/python" -m pip install --quiet -r requirements-triton.txt
  echo "$wanted" > "$stamp"
fi
