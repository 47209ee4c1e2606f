#!/bin/sh
# rke2-uninstall.sh stand-in for the kube-ha lab (test double, not RKE2's script): stops the
# stand-in and removes everything the stand-in installer and the stand-in itself wrote, as the real
# script removes RKE2's binaries, units, config and data.
set -u

if [ "$(id -u)" -ne 0 ]; then
  echo "$(basename "$0"): must be run as root" >&2
  exit 1
fi

/usr/local/bin/rke2-killall.sh || true
for unit in rke2-server rke2-agent; do
  systemctl disable "$unit" >/dev/null 2>&1 || true
done

rm -f /usr/local/lib/systemd/system/rke2-server.service /usr/local/lib/systemd/system/rke2-agent.service \
  /usr/local/bin/rke2 /usr/local/bin/rke2-killall.sh
rm -rf /etc/rancher/rke2 /var/lib/rancher/rke2 /var/lib/kubelet /run/k3s
rmdir /etc/rancher /var/lib/rancher 2>/dev/null || true
systemctl daemon-reload >/dev/null 2>&1 || true
rm -f /usr/local/bin/rke2-uninstall.sh
echo "rke2 stand-in uninstalled"
