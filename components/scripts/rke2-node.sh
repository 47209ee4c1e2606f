#!/usr/bin/env bash
# Installs, configures and starts one RKE2 node, then waits until it is Ready.
#
# Usage: rke2-node.sh ROLE VERSION INSTALL_URL READY_TIMEOUT_SECONDS [NODE_NAME]
#   ROLE is server or agent. The node's config.yaml arrives on standard input, because it holds the
#   cluster token and nothing secret may appear on a command line.
# Prints the node's Kubernetes name on standard output; progress goes to standard error.
# Idempotent: with the same config and version it changes no file and restarts nothing.
set -euo pipefail

role=${1:?role (server or agent)}
version=${2:?pinned RKE2 version}
install_url=${3:?installer URL}
ready_timeout=${4:?ready timeout in seconds}
node_name=${5:-}

config_dir=/etc/rancher/rke2
config_file=$config_dir/config.yaml
kubeconfig=/etc/rancher/rke2/rke2.yaml
kubectl=/var/lib/rancher/rke2/bin/kubectl
service=rke2-$role

case $role in
  server | agent) ;;
  *) echo "rke2-node: unknown role '$role'" >&2; exit 2 ;;
esac

log() { echo "rke2-node[$role]: $*" >&2; }

installed_version() {
  local binary
  for binary in /usr/local/bin/rke2 /usr/bin/rke2 /opt/rke2/bin/rke2; do
    if [ -x "$binary" ]; then
      "$binary" --version 2>/dev/null | awk 'NR == 1 { print $3 }'
      return 0
    fi
  done
}

umask 077
mkdir -p "$config_dir"
staged=$(mktemp "$config_dir/.config.yaml.XXXXXX")
installer=""
cleanup() { rm -f "$staged" ${installer:+"$installer"}; }
trap cleanup EXIT
cat > "$staged"
if [ ! -s "$staged" ]; then
  log "no config on standard input"
  exit 2
fi

changed=no
if cmp -s "$staged" "$config_file"; then
  log "config.yaml unchanged"
else
  chmod 0600 "$staged"
  mv "$staged" "$config_file"
  changed=yes
  log "wrote $config_file"
fi
# A file left by hand with looser permissions would expose the token.
chmod 0600 "$config_file"

if [ "$(installed_version)" != "$version" ]; then
  log "installing RKE2 $version"
  installer=$(mktemp)
  curl --fail --silent --show-error --location --retry 5 --max-time 300 "$install_url" -o "$installer"
  # The installer downloads the release itself; bound it like everything else.
  INSTALL_RKE2_VERSION=$version INSTALL_RKE2_TYPE=$role timeout "$ready_timeout" sh "$installer" >&2
  changed=yes
fi

if ! systemctl is-enabled --quiet "$service" 2>/dev/null; then
  systemctl enable "$service" >&2
fi

deadline=$((SECONDS + ready_timeout))

# RKE2's units are Type=notify: a blocking start returns once the new process reports ready, and
# fails at once if it dies first. They also never time a start out (TimeoutStartSec=0), so a node
# that cannot join would block forever: `timeout` bounds the wait instead.
start_service() {
  local status=0
  log "$1 $service"
  timeout "$ready_timeout" systemctl "$1" "$service" >&2 || status=$?
  if [ "$status" -eq 124 ]; then
    log "$service did not report ready within ${ready_timeout}s; see journalctl -u $service"
    exit 1
  elif [ "$status" -ne 0 ]; then
    log "$service failed to start; see journalctl -u $service"
    exit 1
  fi
}

if [ "$changed" = yes ]; then
  start_service restart
elif ! systemctl is-active --quiet "$service"; then
  start_service start
fi

if [ -z "$node_name" ]; then
  node_name=$(hostname | tr '[:upper:]' '[:lower:]')
fi

# A server is ready when the API it serves reports this node Ready: the next server may then join.
# An agent holds no admin kubeconfig; its unit reporting ready is the signal, and the final cluster
# check sees it Ready.
if [ "$role" = server ]; then
  until status=$("$kubectl" --kubeconfig "$kubeconfig" --request-timeout=10s get node "$node_name" --no-headers 2>/dev/null \
      | awk '{ print $2 }') && [ "$status" = Ready ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "node $node_name not Ready after ${ready_timeout}s (status: ${status:-unknown}); see journalctl -u $service"
      exit 1
    fi
    sleep 2
  done
fi
log "node $node_name is up"
printf '%s\n' "$node_name"
