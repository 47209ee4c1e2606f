#!/usr/bin/env bash
# Installs HAProxy and applies the layer-4 config for the registration and API ports.
#
# Usage: haproxy.sh   (haproxy.cfg on standard input)
# The config is checked before it replaces the running one; idempotent: an unchanged config changes
# no file and reloads nothing.
set -euo pipefail

config_file=/etc/haproxy/haproxy.cfg
log() { echo "haproxy.sh: $*" >&2; }

install_package() {
  if command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >&2; }
  elif command -v dnf >/dev/null; then
    dnf install -y -q "$1" >&2
  elif command -v zypper >/dev/null; then
    zypper --non-interactive install "$1" >&2
  else
    log "no known package manager to install $1"
    exit 1
  fi
}

command -v haproxy >/dev/null || install_package haproxy
mkdir -p "$(dirname "$config_file")"
staged=$(mktemp "$config_file.XXXXXX")
trap 'rm -f "$staged"' EXIT
cat > "$staged"
if ! haproxy -c -q -f "$staged" >&2; then
  log "the rendered config does not pass 'haproxy -c'; the running config is left as it was"
  exit 1
fi

changed=no
if cmp -s "$staged" "$config_file"; then
  log "haproxy.cfg unchanged"
else
  chmod 0644 "$staged"
  mv "$staged" "$config_file"
  changed=yes
  log "wrote $config_file"
fi

if ! systemctl is-enabled --quiet haproxy 2>/dev/null; then
  systemctl enable haproxy >&2
fi
if [ "$changed" = yes ]; then
  # A reload hands open API connections over to the new process instead of cutting them.
  systemctl reload-or-restart haproxy >&2
elif ! systemctl is-active --quiet haproxy; then
  systemctl start haproxy >&2
fi
log "haproxy is active"
