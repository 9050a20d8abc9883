#!/usr/bin/env bash
# Deploy one kustomize overlay and prove it serves, or put the previous version back.
#   deploy.sh OVERLAY NAMESPACE        e.g. (from the project root, as the deploy action runs it)
#   src/{{ cookiecutter.package_name }}/targets/kubernetes/deploy.sh src/{{ cookiecutter.package_name }}/targets/kubernetes/k8s/overlays/staging {{ cookiecutter.project_slug }}-staging
# Steps: refuse an overlay whose image is still the placeholder, kubectl apply -k, wait for the
# rollout, smoke-test through a port-forward to the Service (the built-in server: GET /ready and POST
# /predict; Triton: GET /v2/health/ready and POST /v2/models/MODEL_NAME/infer, KServe v2). Any
# failure: `kubectl rollout undo` when a version was serving before, else (the first deployment:
# nothing to go back to) scale the Deployment to 0 so no broken pods stay up; then exit 1.
# Environment: KUBECONFIG (cluster credentials), ROLLOUT_TIMEOUT (default 300s), SERVER (builtin or
# triton, config.yaml's serve.server; default builtin), MODEL_NAME (Triton's model, default the project's
# name), SMOKE_REQUEST (default ../smoke-request.json, every target's, or smoke-request-v2.json here for Triton),
# LOCAL_PORT (default 18080).
set -euo pipefail

overlay=${1:?usage: deploy.sh OVERLAY NAMESPACE}
namespace=${2:?usage: deploy.sh OVERLAY NAMESPACE}
name={{ cookiecutter.project_slug }}
timeout=${ROLLOUT_TIMEOUT:-300s}
server=${SERVER:-builtin}
case "$server" in
  builtin) ready_path=/ready predict_path=/predict default_request=../smoke-request.json ;;
  triton)
    ready_path=/v2/health/ready
    predict_path=/v2/models/${MODEL_NAME:-$name}/infer
    default_request=smoke-request-v2.json
    ;;
  *) echo "::error::SERVER must be builtin or triton (config.yaml serve.server), not '$server'"; exit 2 ;;
esac
request=${SMOKE_REQUEST:-$(dirname "$0")/$default_request}
port=${LOCAL_PORT:-18080}
forward_pid=""

cleanup() {
  if [ -n "$forward_pid" ]; then kill "$forward_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

roll_back() {
  if [ "${available_before:-0}" -gt 0 ]; then
    echo "::error::$1: rolling deployment/$name in $namespace back to its previous revision"
    kubectl -n "$namespace" rollout undo "deployment/$name" \
      || echo "::warning::rollout undo failed: check \`kubectl -n $namespace rollout history deployment/$name\`"
    kubectl -n "$namespace" rollout status "deployment/$name" --timeout="$timeout" || true
  else
    echo "::error::$1. Nothing to roll back to (no version of deployment/$name was serving in $namespace" \
      "before): scaling it to 0 replicas so no broken pods stay up. See why with" \
      "\`kubectl -n $namespace describe deployment/$name\` and \`kubectl -n $namespace logs deployment/$name\`;" \
      "the next deploy applies the overlay's replica count again."
    kubectl -n "$namespace" scale "deployment/$name" --replicas=0 \
      || echo "::warning::could not scale deployment/$name to 0: delete it by hand"
  fi
  exit 1
}

smoke_test() {
  kubectl -n "$namespace" port-forward "service/$name" "$port:80" >/dev/null 2>&1 &
  forward_pid=$!
  local base="http://127.0.0.1:$port"
  for _ in $(seq 1 30); do
    curl -fsS "$base$ready_path" >/dev/null 2>&1 && break
    sleep 1
  done
  curl -fsS "$base$ready_path" >/dev/null || return 1
  # --fail: any non-2xx answer (a 4xx from a schema mismatch, a 5xx from the model) fails the smoke test.
  curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "@$request" "$base$predict_path" || return 1
  echo
}

placeholder="@sha256:0000000000000000000000000000000000000000000000000000000000000000"
rendered=$(kubectl kustomize "$overlay")
if grep -qF "$placeholder" <<<"$rendered"; then
  echo "::error::$overlay still has the placeholder image digest. Set the image first:" \
    "(cd $overlay && kustomize edit set image model-server=IMAGE@sha256:DIGEST)"
  exit 1
fi
# What a failure goes back to: the version serving now, if any. A missing Deployment (or namespace)
# reads as none; any other error (credentials, network) stops here, before anything is changed.
available_before=$(kubectl -n "$namespace" get "deployment/$name" --ignore-not-found \
  -o jsonpath='{.status.availableReplicas}')

kubectl apply -k "$overlay"
kubectl -n "$namespace" rollout status "deployment/$name" --timeout="$timeout" \
  || roll_back "rollout did not become ready within $timeout"
smoke_test || roll_back "smoke test of $ready_path and $predict_path ($server server) failed"
echo "deployment/$name in $namespace is serving"
