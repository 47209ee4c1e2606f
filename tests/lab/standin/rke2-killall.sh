#!/bin/sh
# rke2-killall.sh stand-in for the kube-ha lab (test double, not RKE2's script): stops the RKE2
# stand-in services and kills what is left of them (the stand-in and its etcd), like the real script
# kills RKE2, containerd and the pods. Safe to run when nothing is running.
set -u

for unit in rke2-server rke2-agent; do
  systemctl stop "$unit" >/dev/null 2>&1 || true
done

# Matches the stand-in's own command lines only, so a shell that merely mentions rke2 survives.
standin_pids() {
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    cmdline=$(tr '\000' ' ' < "$dir/cmdline" 2>/dev/null) || continue
    case $cmdline in
      *"/usr/local/bin/rke2 server"* | *"/usr/local/bin/rke2 agent"* | *"--data-dir=/var/lib/rancher/rke2/server/db/etcd"*)
        echo "$pid" ;;
    esac
  done
}

pids=$(standin_pids)
if [ -n "$pids" ]; then
  # shellcheck disable=SC2086 # one pid a word
  kill -TERM $pids 2>/dev/null || true
  # Bounded: 20 x 0.5 s, then SIGKILL, as systemd escalates after its stop timeout.
  i=0
  while [ "$i" -lt 20 ] && [ -n "$(standin_pids)" ]; do
    sleep 0.5
    i=$((i + 1))
  done
  pids=$(standin_pids)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
fi
exit 0
