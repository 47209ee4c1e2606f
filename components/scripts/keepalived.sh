#!/usr/bin/env bash
# Installs Keepalived and applies the VRRP config that floats the registration VIP between the two
# HAProxy hosts.
#
# Usage: keepalived.sh SOURCE_IP [INTERFACE]   (keepalived.conf on standard input)
#   The config holds the VRRP password, so it comes on standard input and is written with mode 0600.
#   Every @INTERFACE@ in it is replaced by INTERFACE, or, when that is empty, by the interface that
#   holds SOURCE_IP on this machine.
# Idempotent: an unchanged config changes no file and restarts nothing.
set -euo pipefail

source_ip=${1:?VRRP source address of this host}
interface=${2:-}
config_file=/etc/keepalived/keepalived.conf
log() { echo "keepalived.sh: $*" >&2; }

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

command -v keepalived >/dev/null || install_package keepalived
# The track script checks HAProxy with `killall -0`.
command -v killall >/dev/null || install_package psmisc

if [ -z "$interface" ]; then
  interface=$(ip -o addr show | awk -v ip="$source_ip" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }')
fi
if [ -z "$interface" ]; then
  log "no interface on this host holds $source_ip; set registration.interface"
  exit 1
fi

umask 077
mkdir -p "$(dirname "$config_file")"
staged=$(mktemp "$config_file.XXXXXX")
trap 'rm -f "$staged"' EXIT
sed "s/@INTERFACE@/$interface/g" > "$staged"
if ! keepalived -t -f "$staged" >&2; then
  log "the rendered config does not pass 'keepalived -t'; the running config is left as it was"
  exit 1
fi

changed=no
if cmp -s "$staged" "$config_file"; then
  log "keepalived.conf unchanged"
else
  chmod 0600 "$staged"
  mv "$staged" "$config_file"
  changed=yes
  log "wrote $config_file"
fi
chmod 0600 "$config_file"

if ! systemctl is-enabled --quiet keepalived 2>/dev/null; then
  systemctl enable keepalived >&2
fi
if [ "$changed" = yes ]; then
  systemctl restart keepalived >&2
elif ! systemctl is-active --quiet keepalived; then
  systemctl start keepalived >&2
fi
log "keepalived is active on $interface"
