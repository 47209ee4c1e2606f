"""The lab itself: hosts are isolated machines, the systemctl stand-in really manages daemons, and
teardown leaves nothing, also after a failure or an interrupt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import paramiko
import pytest

from tests.lab.hosts import Lab, Topology, clear_stale_labs

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]

DEMO_UNIT = """\
[Unit]
Description=lab demo
[Service]
Type=notify
Environment="GREETING=hello world"
ExecStart=/bin/sh -c 'sleep 300 & sleep 0.5; echo "$GREETING"; touch "$LAB_READY_FILE"; wait'
"""
STUBBORN_UNIT = """\
[Service]
Type=simple
ExecStart=/bin/sh -c 'trap "" TERM; while :; do sleep 0.1; done'
"""
HAPROXY_CFG = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend f
    bind 127.0.0.1:16443
    default_backend b
backend b
    server s 127.0.0.1:16444 check
"""


@pytest.fixture(scope="module")
def lab():
    with Lab(Topology(lbs=0, servers=1, agents=1)) as lab_:
        yield lab_
    assert lab_.leftovers() == []


def test_hosts_are_separate_machines(lab):
    one, two = lab.host("server-1"), lab.host("agent-1")
    assert one.sh("hostname").strip() == "server-1" and two.sh("hostname").strip() == "agent-1"
    one.exec("echo mine > /etc/lab-probe && echo mine > /usr/local/lab-probe")
    assert not two.exists("/etc/lab-probe") and not Path("/etc/lab-probe").exists()
    assert (one.directory / "upper/etc/lab-probe").read_text() == "mine\n"
    # Own process tree: PID 1 is the host's init, and the other host's processes are invisible.
    assert "hostinit.py" in one.sh("cat /proc/1/cmdline | tr '\\0' ' '")
    assert len(one.sh("ls -d /proc/[0-9]*").split()) < 15
    assert one.sh("stat -c %a /root").strip() == "700"
    assert one.sh("command -v systemctl").strip() == "/usr/local/bin/systemctl"
    # Own network: its address on the bridge, no default route, IPv6 off; the bridge is reachable.
    assert one.ipv4_addresses() == [one.address]
    assert one.sh("ip route").strip() == f"{lab.subnet} dev eth0 proto kernel scope link src {one.address}"
    assert one.sh("cat /proc/sys/net/ipv6/conf/all/disable_ipv6").strip() == "1"
    assert one.exec(f"ping -c1 -W2 {two.address}", check=False).returncode == 0
    assert one.exec(f"ping -c1 -W2 {lab.gateway}", check=False).returncode == 0


def test_sshd_takes_the_lab_key_only(lab):
    host = lab.host("server-1")
    status, out, _ = host.ssh("echo $USER:$(hostname)")
    assert (status, out) == (0, "root:server-1\n")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(host.address, username="root", password="root", allow_agent=False, look_for_keys=False, timeout=10)
    client.close()
    transport = paramiko.Transport((host.address, 22))
    transport.start_client(timeout=10)
    assert transport.get_remote_server_key().get_base64() == host.host_key_public
    transport.close()


def _systemctl(host, args: str):
    result = host.exec(f"systemctl {args}", check=False)
    return result.returncode, result.stdout.decode().strip(), result.stderr.decode().strip()


def test_systemctl_standin_starts_waits_for_and_stops_a_notify_unit(lab):
    host = lab.host("server-1")
    host.exec(f"cat > /etc/systemd/system/lab-demo.service <<'EOF'\n{DEMO_UNIT}EOF")
    assert _systemctl(host, "is-enabled lab-demo")[:2] == (1, "disabled")
    assert _systemctl(host, "enable lab-demo")[0] == 0
    assert _systemctl(host, "is-enabled --quiet lab-demo") == (0, "", "")
    assert host.path("/etc/systemd/system/multi-user.target.wants/lab-demo.service").is_symlink()

    assert _systemctl(host, "start --no-block lab-demo")[0] == 0
    assert _systemctl(host, "is-active lab-demo")[:2] == (3, "activating")
    deadline = time.monotonic() + 10
    while _systemctl(host, "is-active --quiet lab-demo")[0] != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _systemctl(host, "is-active lab-demo")[:2] == (0, "active")
    assert "hello world" in host.unit_log("lab-demo")
    processes = [p for p in host.pids() if b"sleep\x00300" in _cmdline(p)]
    assert len(processes) == 1

    assert _systemctl(host, "stop lab-demo")[0] == 0
    assert _systemctl(host, "is-active lab-demo")[:2] == (3, "inactive")
    assert not [p for p in host.pids() if b"sleep\x00300" in _cmdline(p)]

    started = time.monotonic()
    assert _systemctl(host, "start lab-demo")[0] == 0  # blocking: returns once the service is ready
    assert time.monotonic() - started >= 0.5
    assert _systemctl(host, "is-active lab-demo")[1] == "active"
    first = host.unit_main_pid("lab-demo")
    assert _systemctl(host, "restart lab-demo")[0] == 0
    assert host.unit_main_pid("lab-demo") not in (None, first)

    # A service that dies is failed, not active: PID 1 reaped it, and a zombie would not count anyway.
    host.exec(f"kill -9 {host.unit_main_pid('lab-demo')}")
    time.sleep(0.3)
    assert _systemctl(host, "is-active lab-demo")[:2] == (3, "failed")
    assert _systemctl(host, "is-failed --quiet lab-demo")[0] == 0
    assert _systemctl(host, "stop lab-demo")[0] == 0  # also kills the orphaned `sleep 300`
    assert not [p for p in host.pids() if b"sleep\x00300" in _cmdline(p)]

    calls = host.systemctl_calls()
    assert [c["args"] for c in calls][:3] == [["is-enabled", "lab-demo"], ["enable", "lab-demo"], ["is-enabled", "--quiet", "lab-demo"]]
    assert all({"time", "args", "rc"} <= set(c) for c in calls)
    assert _systemctl(host, "start no-such-unit")[0] == 5
    assert host.systemctl_calls()[-1]["rc"] == 5


def test_systemctl_standin_kills_what_ignores_sigterm_after_10_seconds(lab):
    host = lab.host("agent-1")
    host.exec(f"cat > /etc/systemd/system/stubborn.service <<'EOF'\n{STUBBORN_UNIT}EOF")
    assert _systemctl(host, "start stubborn")[0] == 0
    assert _systemctl(host, "is-active stubborn")[1] == "active"
    started = time.monotonic()
    assert _systemctl(host, "stop stubborn")[0] == 0
    assert 9.5 <= time.monotonic() - started <= 14
    assert _systemctl(host, "is-active stubborn")[1] == "inactive"


def test_systemctl_standin_runs_and_reloads_haproxy_as_the_lab_defines_it(lab):
    host = lab.host("agent-1")
    host.exec(f"mkdir -p /etc/haproxy && cat > /etc/haproxy/haproxy.cfg <<'EOF'\n{HAPROXY_CFG}EOF")
    assert _systemctl(host, "start haproxy")[0] == 0
    master = host.unit_main_pid("haproxy")
    assert _systemctl(host, "is-active haproxy")[1] == "active"
    assert host.sh("killall -0 haproxy && echo alive").strip() == "alive"
    assert _systemctl(host, "reload-or-restart haproxy")[0] == 0  # SIGUSR2 to the master: same pid
    time.sleep(0.5)
    assert host.unit_main_pid("haproxy") == master and _systemctl(host, "is-active haproxy")[1] == "active"
    assert _systemctl(host, "stop haproxy")[0] == 0
    assert host.exec("killall -0 haproxy", check=False).returncode != 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_teardown_after_a_failure_leaves_nothing():
    lab = Lab(Topology(lbs=0, servers=1, agents=1))
    with pytest.raises(RuntimeError, match="scenario failed"):
        with lab:
            host = lab.host("server-1")
            host.exec("printf '[Service]\\nExecStart=/bin/sleep 600\\n' > /etc/systemd/system/sleeper.service")
            host.exec("systemctl start sleeper")
            daemon = [p for p in host.pids() if b"/bin/sleep\x00600" in _cmdline(p)]
            assert len(daemon) == 1
            raise RuntimeError("scenario failed")
    assert lab.leftovers() == []
    assert not Path(f"/proc/{daemon[0]}").exists()


CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {root!r})
    from tests.lab.hosts import Lab, Topology
    lab = Lab(Topology(lbs=0, servers=1, agents=1)).start()
    host = lab.host("server-1")
    print(json.dumps({{"index": lab.index, "dir": str(lab.directory), "init": host.init_pid}}), flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_teardown_after_an_interrupt_leaves_nothing(sig):
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT))], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(child.stdout.readline())
        child.send_signal(sig)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if sig == signal.SIGKILL:
        # Nothing could run in the killed process; the next lab clears what it left.
        assert Path(f"/run/netns/khlab{info['index']}-server-1").exists()
        assert info["index"] in clear_stale_labs()
    bridge = f"khlab{info['index']}"
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0
    assert not [n for n in os.listdir("/run/netns") if n.startswith(bridge + "-")] if os.path.isdir("/run/netns") else True
    assert not Path(info["dir"]).exists()
    # The killed lab's orphans are reaped by the machine's PID 1: allow it a moment.
    deadline = time.monotonic() + 10
    while Path(f"/proc/{info['init']}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{info['init']}").exists()
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if info["dir"] in line]
