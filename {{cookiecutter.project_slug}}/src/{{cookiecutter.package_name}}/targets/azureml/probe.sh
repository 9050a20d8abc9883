#!/usr/bin/env bash
# Send the smoke request to one deployment of an Azure ML online endpoint directly (the header
# azureml-model-deployment routes it there, whatever the traffic split): once with SECONDS 0 (the
# smoke test, before it takes traffic); else every PROBE_INTERVAL until SECONDS have passed, each
# round also through the endpoint's traffic split (the health window after the canary). Any answer
# other than 2xx fails it (exit 1), with the status and body.
#   probe.sh ENDPOINT DEPLOYMENT [SECONDS]
# Needs `az` signed in (azure/login) with the ml extension, and the endpoint's auth_mode aml_token.
# Environment: SMOKE_REQUEST (default ../smoke-request.json, every deploy target's), PROBE_INTERVAL (default 10 s).
set -euo pipefail

endpoint=${1:?usage: probe.sh ENDPOINT DEPLOYMENT [SECONDS]}
deployment=${2:?usage: probe.sh ENDPOINT DEPLOYMENT [SECONDS]}
window=${3:-0}
request=${SMOKE_REQUEST:-$(dirname "$0")/../smoke-request.json}
interval=${PROBE_INTERVAL:-10}

scoring_uri=$(az ml online-endpoint show --name "$endpoint" --query scoring_uri --output tsv)
token=$(az ml online-endpoint get-credentials --name "$endpoint" --query accessToken --output tsv)
if [ -n "${GITHUB_ACTIONS:-}" ]; then echo "::add-mask::$token"; fi
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT

# One POST; $1 is the extra header ("" for the endpoint's own split).
score() {
  local route=$1 status
  local headers=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
  if [ -n "$route" ]; then headers+=(-H "azureml-model-deployment: $route"); fi
  status=$(curl -sS --max-time 60 -o "$answer" -w '%{http_code}' -X POST "${headers[@]}" \
    --data-binary "@$request" "$scoring_uri") || true
  case "$status" in
    2??) ;;
    000)
      echo "::error::$endpoint${route:+ (deployment $route)} gave no answer at $scoring_uri (see curl's message above)"
      return 1
      ;;
    *)
      echo "::error::$endpoint${route:+ (deployment $route)} answered $status: $(head -c 500 "$answer")"
      return 1
      ;;
  esac
}

deadline=$((SECONDS + window))
rounds=0
while :; do
  score "$deployment"
  if [ "$window" -gt 0 ]; then score ""; fi
  rounds=$((rounds + 1))
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep "$interval"
done
if [ "$window" -gt 0 ]; then
  echo "$endpoint: $rounds rounds over ${window}s answered 2xx, by $deployment directly and through the traffic split"
else
  echo "$endpoint: deployment $deployment answered the smoke request"
fi
