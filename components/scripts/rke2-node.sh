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
  INSTALL_RKE2_VERSION=$version INSTALL_RKE2_TYPE=$role sh "$installer" >&2
  changed=yes
fi

if ! systemctl is-enabled --quiet "$service" 2>/dev/null; then
  systemctl enable "$service" >&2
fi
# --no-block: RKE2's units never time out a start (TimeoutStartSec=0), so a node that cannot join
# would hang a blocking start forever; the bounded wait below decides instead.
if [ "$changed" = yes ]; then
  log "restarting $service"
  systemctl restart --no-block "$service" >&2
elif ! systemctl is-active --quiet "$service"; then
  log "starting $service"
  systemctl start --no-block "$service" >&2
fi

if [ -z "$node_name" ]; then
  node_name=$(hostname | tr '[:upper:]' '[:lower:]')
fi

node_ready() {
  local status
  if [ "$role" = agent ]; then
    # Agents hold no admin kubeconfig: active means registered; the final cluster check sees Ready.
    systemctl is-active --quiet "$service"
    return
  fi
  # A server is ready when the API it serves reports this node Ready: the next server may then join.
  status=$("$kubectl" --kubeconfig "$kubeconfig" get node "$node_name" --no-headers 2>/dev/null | awk '{ print $2 }') || return 1
  [ "$status" = Ready ]
}

# RKE2's units restart a crashed service (Restart=always), so systemd reports a crash loop as
# activating, never failed; the restart count (reset by our own start) shows it instead.
automatic_restarts() {
  local count
  count=$(systemctl show -p NRestarts --value "$service" 2>/dev/null) || count=0
  case $count in
    '' | *[!0-9]*) echo 0 ;;
    *) echo "$count" ;;
  esac
}

deadline=$((SECONDS + ready_timeout))
until node_ready; do
  if systemctl is-failed --quiet "$service"; then
    log "$service failed; see journalctl -u $service"
    exit 1
  fi
  if [ "$(automatic_restarts)" -ge 3 ]; then
    log "$service keeps crashing (restarted $(automatic_restarts) times); see journalctl -u $service"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "node $node_name not ready after ${ready_timeout}s; see journalctl -u $service"
    exit 1
  fi
  sleep 2
done
log "node $node_name is up"
printf '%s\n' "$node_name"
