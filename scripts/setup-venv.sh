#!/usr/bin/env bash
# Create (or reuse) the venvs the two commands run with. Re-running is cheap: pip only runs when
# what a venv was installed from changed since its last install.
#   bash scripts/setup-venv.sh        .venv (requirements-test.txt: the template's tests) and .venv-triton
#   bash scripts/setup-venv.sh demo   .venv-demo only: what the main job (demo.sh) runs, the default
#                                     bake's own lock (sklearn) plus cookiecutter: no torch, TensorFlow,
#                                     Ray or Triton, a few times less to install
set -euo pipefail
cd "$(dirname "$0")/.."

WHICH=${1:-all}
case "$WHICH" in
  all | demo) ;;
  *) echo "usage: $0 [all|demo]  (all: .venv and .venv-triton; demo: .venv-demo), not '$WHICH'" >&2; exit 2 ;;
esac

VENV=${VENV:-.venv}
TRITON_VENV=${TRITON_VENV:-.venv-triton}
DEMO_VENV=${DEMO_VENV:-.venv-demo}
DEMO_LOCK='{{cookiecutter.project_slug}}/requirements/sklearn.lock'
# PyTorch's CPU wheel: a plain `pip install torch` would fetch a multi-GB CUDA build.
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}

digest() {
  cat "$@" | sha256sum | cut -d' ' -f1
}

# venv_for [--lock-pip] VENV FILE...: create VENV if missing; succeed when the FILEs changed since its last
# install. --lock-pip: the first FILE is a lock that pins pip: the venv is made without ensurepip's pip (it
# would install and byte-compile one, seconds, only to have it replaced) and gets the lock's pip from the
# pip python3 has (22.3+: --python), else from ensurepip.
venv_for() {
  local upgrade_pip=yes
  if [ "$1" = --lock-pip ]; then
    upgrade_pip=no
    shift
  fi
  local venv=$1
  shift
  if [ ! -x "$venv/bin/python" ]; then
    echo "--> creating $venv"
    if [ "$upgrade_pip" = yes ]; then
      python3 -m venv "$venv"
      "$venv/bin/python" -m pip install --quiet --upgrade pip
    else
      python3 -m venv --without-pip "$venv"
      python3 -m pip --python "$venv/bin/python" install --quiet --no-deps "$(grep '^pip==' "$1")" 2>/dev/null \
        || "$venv/bin/python" -m ensurepip --default-pip
    fi
  fi
  [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$(digest "$@")" ]
}

installed() {
  local venv=$1
  shift
  digest "$@" > "$venv/.requirements.sha256"
}

if [ "$WHICH" = demo ]; then
  cookiecutter_pin=$(grep -E '^cookiecutter==' requirements-test.txt)
  if venv_for --lock-pip "$DEMO_VENV" "$DEMO_LOCK" <(echo "$cookiecutter_pin"); then
    echo "--> installing the default bake's lock and $cookiecutter_pin into $DEMO_VENV"
    # As the bake's `make setup` installs it: the lock is pip-compile's whole closure (its own pip included),
    # so --no-deps leaves pip nothing to resolve, and --no-compile skips byte-compiling every module of every
    # package (Python compiles the few the pipeline imports when it first imports them). Then cookiecutter,
    # resolved: the lock holds most of what it needs, pip adds the rest.
    "$DEMO_VENV/bin/python" -m pip install --quiet --no-deps --no-compile -r "$DEMO_LOCK"
    "$DEMO_VENV/bin/python" -m pip install --quiet --no-compile "$cookiecutter_pin"
    "$DEMO_VENV/bin/python" -m pip check
    installed "$DEMO_VENV" "$DEMO_LOCK" <(echo "$cookiecutter_pin")
  fi
  exit 0
fi

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
if venv_for "$TRITON_VENV" requirements-triton.txt; then
  echo "--> installing requirements-triton.txt into $TRITON_VENV"
  "$TRITON_VENV/bin/python" -m pip install --quiet -r requirements-triton.txt
  installed "$TRITON_VENV" requirements-triton.txt
fi
