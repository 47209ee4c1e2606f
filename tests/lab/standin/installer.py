"""The RKE2 stand-in's installer: what the lab serves at `kube-ha:installUrl` instead of get.rke2.io.

`build_installer()` returns a POSIX sh script that embeds the stand-in (no further download), and is
run by rke2-node.sh as `INSTALL_RKE2_VERSION=v.. INSTALL_RKE2_TYPE=server|agent sh installer`.
"""

from __future__ import annotations

import base64
from pathlib import Path

STANDIN_DIR = Path(__file__).resolve().parent

VERSION_PLACEHOLDER = "@RKE2_VERSION@"

# (source in this directory, installed path, mode, whether the pinned version is written into it)
PAYLOAD = (
    ("rke2_standin.py", "/usr/local/bin/rke2", "0755", True),
    ("kubectl_standin.py", "/var/lib/rancher/rke2/bin/kubectl", "0755", True),
    ("rke2-killall.sh", "/usr/local/bin/rke2-killall.sh", "0755", False),
    ("rke2-uninstall.sh", "/usr/local/bin/rke2-uninstall.sh", "0755", False),
)

UNIT_TEMPLATE = """\
# Lab stand-in for RKE2's {role} unit: runs the RKE2 stand-in (a test double), not RKE2.
[Unit]
Description=Rancher Kubernetes Engine v2 ({role}) - kube-ha lab stand-in
Documentation=https://github.com/rancher/rke2#readme
Wants=network-online.target
After=network-online.target
Conflicts={other}.service

[Service]
Type=notify
EnvironmentFile=-/etc/default/rke2-{role}
EnvironmentFile=-/etc/sysconfig/rke2-{role}
EnvironmentFile=-/usr/local/lib/systemd/system/rke2-{role}.env
TimeoutStartSec=0
# The real unit has Restart=always; the lab's systemctl does not restart, so a failed join shows as failed.
ExecStart=/usr/local/bin/rke2 {role}

[Install]
WantedBy=multi-user.target
"""

SCRIPT_HEAD = """\
#!/bin/sh
# Installer of the RKE2 stand-in for the kube-ha lab: a test double of get.rke2.io that installs a
# test double of RKE2's registration contract, not RKE2. Everything it installs is embedded below.
# Usage: INSTALL_RKE2_VERSION=v1.2.3+rke2r1 [INSTALL_RKE2_TYPE=server|agent] sh install.sh
set -eu

info() { echo "[INFO]  $*"; }
fatal() { echo "[ERROR] $*" >&2; exit 1; }

version=${INSTALL_RKE2_VERSION:-}
type=${INSTALL_RKE2_TYPE:-server}
case $version in
  *"
"*) fatal "INSTALL_RKE2_VERSION must be a single line" ;;
esac
# The stand-in has no release channels: only a pinned version installs, as the program requires.
if ! printf '%s\\n' "$version" | grep -Eq '^v[0-9]+\\.[0-9]+\\.[0-9]+\\+rke2r[0-9]+$'; then
  fatal "INSTALL_RKE2_VERSION '$version' is not a pinned RKE2 version like v1.33.5+rke2r1"
fi
case $type in
  server | agent) ;;
  *) fatal "INSTALL_RKE2_TYPE must be server or agent, not '$type'" ;;
esac
[ "$(id -u)" -eq 0 ] || fatal "the installer must run as root"

delay=@DELAY@
if [ "$delay" != 0 ]; then
  info "downloading rke2 $version (simulated: ${delay}s)"
  sleep "$delay"
fi

# Written beside the target and renamed over it, so a running stand-in or a concurrent reader never
# sees half a file, and a re-run leaves identical files.
install_file() {
  target=$1 mode=$2
  mkdir -p "$(dirname "$target")"
  tmp="$target.standin-install.$$"
  base64 -d > "$tmp"
  if [ "$3" = versioned ]; then
    sed -i "s/@PLACEHOLDER@/$version/" "$tmp"
  fi
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$target"
}

"""


def _embed(target: str, mode: str, versioned: bool, content: bytes) -> str:
    encoded = base64.encodebytes(content).decode()
    marker = "STANDIN_PAYLOAD_EOF"
    return f"install_file {target} {mode} {'versioned' if versioned else 'plain'} <<'{marker}'\n{encoded}{marker}\n"


def build_installer(install_delay_seconds: float = 0.0) -> str:
    """The installer script's text; `install_delay_seconds` simulates the download time."""
    if install_delay_seconds < 0:
        raise ValueError("install_delay_seconds must not be negative")
    delay = "0" if install_delay_seconds == 0 else f"{install_delay_seconds:.3f}"
    parts = [SCRIPT_HEAD.replace("@DELAY@", delay).replace("@PLACEHOLDER@", VERSION_PLACEHOLDER)]
    for source, target, mode, versioned in PAYLOAD:
        parts.append(_embed(target, mode, versioned, (STANDIN_DIR / source).read_bytes()))
    for role, other in (("server", "rke2-agent"), ("agent", "rke2-server")):
        unit = UNIT_TEMPLATE.format(role=role, other=other).encode()
        parts.append(_embed(f"/usr/local/lib/systemd/system/rke2-{role}.service", "0644", False, unit))
    parts.append('info "installed rke2 stand-in $version ($type): /usr/local/bin/rke2, rke2-server and rke2-agent units"\n')
    return "".join(parts)
