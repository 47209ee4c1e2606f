#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every test.
#
# Usage: bash tests/run.sh [pytest arguments]
# As root on Debian it also installs the lab's packages (OpenSSH, HAProxy, Keepalived, etcd), so the
# lab runs; elsewhere the lab tests skip and say why. Without arguments it then checks the policy
# pack and the workflows in their own venv (.ci/policy.sh); with arguments it runs just that pytest.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=${KUBE_HA_VENV:-venv}

debian_packages=(
  shellcheck haproxy keepalived openssh-server openssh-client socat iputils-ping psmisc
  etcd-server etcd-client python3 python3-yaml python3-cryptography curl iproute2 procps util-linux
)

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    # Without this guard apt would start sshd, haproxy, keepalived and etcd on the machine itself.
    created_policy=no
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod 0755 /usr/sbin/policy-rc.d
      created_policy=yes
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [ "$created_policy" = yes ]; then
      rm -f /usr/sbin/policy-rc.d
    fi
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt

if [ "$#" -gt 0 ]; then
  exec "$venv/bin/python" -m pytest "$@"
fi
"$venv/bin/python" -m pytest
bash .ci/policy.sh
