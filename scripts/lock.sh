#!/usr/bin/env bash
# Regenerate {{cookiecutter.project_slug}}/requirements/<framework>.lock: bake each framework (and RL), run the
# baked project's own `make lock` (pip-compile over pyproject.toml, dev extra included), copy the lock back.
# The post-generation hook keeps the chosen framework's lock as requirements.lock.
#
# Locks are resolved for the Python running this script (3.11, the template's default) on Linux x86_64;
# a project generated with python_version=3.12 runs `make lock` once with its own Python.
# tests/test_tooling.py fails when a lock no longer satisfies its pyproject.toml: run this then.
#
#   bash scripts/lock.sh                      # every framework
#   bash scripts/lock.sh pytorch              # one
#   PYTHON=/path/to/python bash scripts/lock.sh   # needs cookiecutter and pip-tools (requirements-test.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
template=$PWD
PYTHON=${PYTHON:-$template/.venv/bin/python}
PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")
# PyTorch's CPU index, for torch alone (the CUDA build on PyPI drags in GBs of nvidia-* packages).
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
# A lock per framework (cookiecutter.json's choices), and `reinforcement` (task=reinforcement, whose only
# framework is pytorch).
frameworks=("$@")
if [ ${#frameworks[@]} -eq 0 ]; then
  read -r -a frameworks <<<"$("$PYTHON" -c 'import json; print(*json.load(open("cookiecutter.json"))["framework"])')"
  frameworks+=(reinforcement)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for framework in "${frameworks[@]}"; do
  echo "--> locking $framework"
  options=("framework=$framework")
  [ "$framework" != reinforcement ] || options=(task=reinforcement framework=pytorch)
  "$PYTHON" -m cookiecutter --no-input -o "$work/$framework" "$template" "${options[@]}" python_version=3.11
  project=$(find "$work/$framework" -mindepth 1 -maxdepth 1 -type d)
  make -C "$project" lock PYTHON="$PYTHON" TORCH_INDEX_URL="$TORCH_INDEX_URL"
  cp "$project/requirements.lock" "$template/{{cookiecutter.project_slug}}/requirements/$framework.lock"
done
