#!/usr/bin/env bash
# Write a kubeconfig for the deploy job to PATH (first argument), from either
#   KUBECONFIG_CONTENT  a whole kubeconfig (the environment secret KUBECONFIG: any cluster, any cloud), or
#   CLUSTER_SERVER (+ CLUSTER_CA base64, OIDC_AUDIENCE)  GitHub's OIDC token presented to an API server
#   configured to trust https://token.actions.githubusercontent.com (needs `id-token: write`).
set -euo pipefail

path=${1:?usage: kubeconfig.sh PATH}
umask 077
if [ -n "${KUBECONFIG_CONTENT:-}" ]; then
  printf '%s\n' "$KUBECONFIG_CONTENT" > "$path"
elif [ -n "${CLUSTER_SERVER:-}" ]; then
  if [ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ]; then
    echo "::error::no OIDC token available: give the job 'permissions: id-token: write'" >&2
    exit 2
  fi
  token=$(curl -fsS -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
    "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=${OIDC_AUDIENCE:-kubernetes}" | jq -r .value)
  echo "::add-mask::$token"
  ca_file=$(mktemp)
  printf '%s' "${CLUSTER_CA:-}" | base64 -d > "$ca_file"
  kubectl config --kubeconfig "$path" set-cluster target --server "$CLUSTER_SERVER" \
    --certificate-authority "$ca_file" --embed-certs=true
  kubectl config --kubeconfig "$path" set-credentials github-actions --token "$token"
  kubectl config --kubeconfig "$path" set-context target --cluster target --user github-actions
  kubectl config --kubeconfig "$path" use-context target
  rm -f "$ca_file"
else
  echo "::error::no cluster credentials: add the environment secret KUBECONFIG, or the environment" \
    "variables CLUSTER_SERVER and CLUSTER_CA for OIDC (see README.md beside this script)" >&2
  exit 2
fi
echo "KUBECONFIG=$path" >> "${GITHUB_ENV:-/dev/null}"
