#!/usr/bin/python3
"""PID 1 of a lab host: per-host file systems, sshd, and the reaping that a real init does.

Runs (as root, stdlib only, under the system python3) as the first process of
`ip netns exec NS unshare --mount --pid --uts --ipc --fork --mount-proc --propagation private`, so
its mounts, pid numbers and hostname are the host's own. Given the host's directory (made by
tests/lab/hosts.py), it:
- sets the hostname;
- lays an overlay over /etc /var /usr/local /opt /srv (lower: the machine's directory, upper: the
  host directory's upper/<dir>), so packages stay visible and every write stays on this host;
- mounts a fresh tmpfs on /run, /tmp and /root (filled from /etc/skel, plus the lab's authorized key);
- installs the lab's systemctl stand-in as /usr/local/bin/systemctl;
- starts a key-only sshd on the host's address and writes `ready` to its control file;
- reaps every orphan (a zombie still passes `kill -0`), and on SIGTERM signals every process of the
  host, waits up to 3 s, kills what is left and exits, which ends the PID namespace.
"""

import json
import os
import py_compile
import shutil
import signal
import socket
import subprocess
import sys
import time

OVERLAID = ("/etc", "/var", "/usr/local", "/opt", "/srv")
SYSTEMCTL_MODULE = "/usr/local/lib/kube-ha-lab/lab_systemctl.py"
SYSTEMCTL_LAUNCHER = """#!/usr/bin/python3 -IS
# The kube-ha lab's systemctl stand-in (tests/lab/systemctl_standin.py); see that file.
import sys
sys.path.insert(0, "/usr/local/lib/kube-ha-lab")
import lab_systemctl
lab_systemctl.run()
"""


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def setup(spec):
    host_dir = spec["dir"]
    socket.sethostname(spec["hostname"])
    # Read what the host needs from the lab directory before the host's own /tmp hides it.
    carried = {}
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "sshd_config"):
        with open(os.path.join(host_dir, name), "rb") as handle:
            carried[name] = handle.read()
    with open(spec["systemctl"], "rb") as handle:
        systemctl = handle.read()
    for directory in OVERLAID:
        upper = os.path.join(host_dir, "upper", directory.strip("/"))
        work = os.path.join(host_dir, "work", directory.strip("/"))
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        mount("-t", "overlay", "overlay", "-o", f"lowerdir={directory},upperdir={upper},workdir={work}", directory)
    # This mount namespace began as a copy of the machine's, with a bind mount of every named network
    # namespace (/run/netns/*, other labs' too). A copy would keep those namespaces alive after their
    # owners delete them, so drop every namespace mount here (private propagation: the machine keeps its own).
    with open("/proc/self/mountinfo") as handle:
        ns_mounts = [line.split()[4] for line in handle if " - nsfs " in line]
    for target in sorted(ns_mounts, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)
    subprocess.run(["umount", "-l", "/run/netns"], capture_output=True)
    mount("-t", "tmpfs", "-o", "mode=0755,size=64m", "tmpfs", "/run")
    mount("-t", "tmpfs", "-o", "mode=1777,size=256m", "tmpfs", "/tmp")
    mount("-t", "tmpfs", "-o", "mode=0700,size=16m", "tmpfs", "/root")
    shutil.copytree("/etc/skel", "/root", dirs_exist_ok=True, symlinks=True)
    os.chmod("/root", 0o700)
    os.makedirs("/root/.ssh", mode=0o700, exist_ok=True)
    with open("/root/.ssh/authorized_keys", "w") as handle:
        handle.write(spec["authorized_key"] + "\n")
    os.chmod("/root/.ssh/authorized_keys", 0o600)
    for directory in ("/run/sshd", "/run/lock", "/var/log/lab-units", "/etc/ssh/lab", "/usr/local/bin"):
        os.makedirs(directory, exist_ok=True)
    os.chmod("/run/sshd", 0o755)
    for name, content in carried.items():
        path = os.path.join("/etc/ssh/lab", name)
        with open(path, "wb") as handle:
            handle.write(content)
        os.chmod(path, 0o600 if name.endswith("_key") else 0o644)
    # The stand-in as a module (compiled once here) behind a two-line launcher.
    os.makedirs(os.path.dirname(SYSTEMCTL_MODULE), exist_ok=True)
    with open(SYSTEMCTL_MODULE, "wb") as handle:
        handle.write(systemctl)
    py_compile.compile(SYSTEMCTL_MODULE, doraise=True)
    with open("/usr/local/bin/systemctl", "w") as handle:
        handle.write(SYSTEMCTL_LAUNCHER)
    os.chmod("/usr/local/bin/systemctl", 0o755)
    with open("/etc/hostname", "w") as handle:
        handle.write(spec["hostname"] + "\n")
    with open("/etc/hosts", "w") as handle:
        handle.write("127.0.0.1\tlocalhost\n")
        for name, address in spec["hosts"].items():
            handle.write(f"{address}\t{name}\n")


def main():
    spec = json.loads(sys.argv[1])
    # Opened before the host's /tmp covers the lab directory, so the lab can still read it.
    control = open(os.path.join(spec["dir"], "control"), "w")
    try:
        setup(spec)
        with open("/var/log/lab-sshd.log", "ab") as log:
            sshd = subprocess.Popen(
                ["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/lab/sshd_config"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
    except Exception as err:  # noqa: BLE001 - reported to the lab, which fails the host's start
        control.write(f"error: {err!r}\n")
        control.close()
        sys.exit(1)
    control.write(f"ready {os.getpid()} {sshd.pid}\n")
    control.close()

    stopping = []

    def on_term(signum, frame):
        stopping.append(signum)
        raise SystemExit

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(0.5)
    except SystemExit:
        pass
    # Every process of the host, then whatever survives SIGTERM for 3 s.
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
        try:
            os.kill(-1, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.02)
        else:
            continue
        break
    sys.exit(0)


if __name__ == "__main__":
    main()
