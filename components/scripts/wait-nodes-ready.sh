#!/usr/bin/env bash
# Waits until every named node is Ready, and fails listing those that are not.
#
# Usage: wait-nodes-ready.sh KUBECTL KUBECONFIG TIMEOUT_SECONDS NODE_NAME...
# Changes nothing on the machine.
set -euo pipefail

kubectl=${1:?kubectl path}
kubeconfig=${2:?kubeconfig path}
timeout=${3:?seconds to wait}
shift 3
if [ "$#" -eq 0 ]; then
  echo "wait-nodes-ready: no node names given" >&2
  exit 2
fi

not_ready() {
  local listing name status
  listing=$("$kubectl" --kubeconfig "$kubeconfig" --request-timeout=10s get nodes --no-headers 2>/dev/null) || listing=""
  for name in "$@"; do
    status=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$listing")
    if [ "$status" != Ready ]; then
      printf '%s(%s) ' "$name" "${status:-absent}"
    fi
  done
}

deadline=$((SECONDS + timeout))
while :; do
  pending=$(not_ready "$@")
  if [ -z "$pending" ]; then
    echo "all $# nodes Ready" >&2
    printf '%s\n' "$@"
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "wait-nodes-ready: not Ready after ${timeout}s: ${pending% }" >&2
    exit 1
  fi
  sleep 2
done
