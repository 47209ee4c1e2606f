#!/usr/bin/env bash
# Prints a file that a service writes on its first start (a cluster token, a kubeconfig), waiting for it.
#
# Usage: read-secret-file.sh PATH TIMEOUT_SECONDS
# The caller treats standard output as a secret. Changes nothing on the machine.
set -euo pipefail

path=${1:?file to read}
timeout=${2:?seconds to wait}

deadline=$((SECONDS + timeout))
until [ -s "$path" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "read-secret-file: $path did not appear within ${timeout}s" >&2
    exit 1
  fi
  sleep 1
done
cat "$path"
