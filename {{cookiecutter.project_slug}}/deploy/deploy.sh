#!/usr/bin/env bash
# Deploy one kustomize overlay and prove it serves, or put the previous version back.
#   deploy/deploy.sh OVERLAY NAMESPACE        e.g. deploy/deploy.sh deploy/k8s/overlays/staging {{ cookiecutter.project_slug }}-staging
# Steps: kubectl apply -k, wait for the rollout, smoke-test GET /ready and POST /predict through a
# port-forward to the Service. Any failure: `kubectl rollout undo`, then exit 1.
# Environment: KUBECONFIG (cluster credentials), ROLLOUT_TIMEOUT (default 300s),
# SMOKE_REQUEST (default deploy/smoke-request.json), LOCAL_PORT (default 18080).
set -euo pipefail

overlay=${1:?usage: deploy.sh OVERLAY NAMESPACE}
namespace=${2:?usage: deploy.sh OVERLAY NAMESPACE}
name={{ cookiecutter.project_slug }}
timeout=${ROLLOUT_TIMEOUT:-300s}
request=${SMOKE_REQUEST:-$(dirname "$0")/smoke-request.json}
port=${LOCAL_PORT:-18080}
forward_pid=""

cleanup() {
  if [ -n "$forward_pid" ]; then kill "$forward_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

roll_back() {
  echo "::error::$1: rolling deployment/$name in $namespace back to its previous revision"
  kubectl -n "$namespace" rollout undo "deployment/$name" \
    || echo "::warning::nothing to roll back to (first deployment?)"
  kubectl -n "$namespace" rollout status "deployment/$name" --timeout="$timeout" || true
  exit 1
}

smoke_test() {
  kubectl -n "$namespace" port-forward "service/$name" "$port:80" >/dev/null 2>&1 &
  forward_pid=$!
  local base="http://127.0.0.1:$port"
  for _ in $(seq 1 30); do
    curl -fsS "$base/ready" >/dev/null 2>&1 && break
    sleep 1
  done
  curl -fsS "$base/ready" >/dev/null || return 1
  # --fail: any non-2xx answer (a 4xx from a schema mismatch, a 5xx from the model) fails the smoke test.
  curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "@$request" "$base/predict" || return 1
  echo
}

kubectl apply -k "$overlay"
kubectl -n "$namespace" rollout status "deployment/$name" --timeout="$timeout" \
  || roll_back "rollout did not become ready within $timeout"
smoke_test || roll_back "smoke test of /ready and /predict failed"
echo "deployment/$name in $namespace is serving"
