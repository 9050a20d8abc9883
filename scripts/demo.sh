#!/usr/bin/env bash
# The main job: bake a project with the defaults into ./scratch and run its whole pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
# .venv-demo: the default bake's own lock and cookiecutter, not the tests' venvs (torch, TensorFlow, Ray, Triton).
bash scripts/setup-venv.sh demo
root=$(pwd)
rm -rf scratch/credit-model
.venv-demo/bin/cookiecutter --no-input --output-dir scratch .
cd scratch/credit-model
git init --quiet && git add -A && git -c user.name=demo -c user.email=demo@localhost commit --quiet -m "Baked from the template"
# The baked project runs with .venv-demo: the versions its own requirements.lock pins, installed once.
# The stages as the project's family lists them (its PIPELINE: what `make pipeline` runs, in order).
stages=$(PYTHONPATH=src "$root/.venv-demo/bin/python" -c \
  "from credit_model.family import stage_list; print(' -> '.join(stage.name for stage in stage_list()))")
echo "--> make pipeline ($stages)"
start=$(date +%s%N)
make pipeline PYTHON="env PYTHONPATH=src MLFLOW_DISABLE_TELEMETRY=true $root/.venv-demo/bin/python"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "--> pipeline wall time: $((elapsed_ms / 1000)).$(( (elapsed_ms % 1000) / 100 )) s"
cat <<EOM

Done. The run, its metrics, plots, gate report and ONNX model are in MLflow:

    cd scratch/credit-model && $root/.venv-demo/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

then open http://127.0.0.1:5000 . The exported model: scratch/credit-model/outputs/model.onnx
EOM
