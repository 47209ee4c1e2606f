"""Lab scenarios 3 (given token) and 4 (HAProxy killed on the VIP holder while agents join), on a
fresh lab: 2 LB hosts, 3 servers, 2 agents, a token given in the stack config."""

from __future__ import annotations

import datetime
import re
import threading
import time

import pytest
import yaml

from tests.lab.hosts import Topology
from tests.lab.stack import LabStack

pytestmark = pytest.mark.lab

GIVEN_TOKEN = "kube-ha-lab-given-token.0123456789"
NODES = ["server-1", "server-2", "server-3", "agent-1", "agent-2"]


@pytest.fixture(scope="module")
def stack():
    with LabStack.checked(Topology(lbs=2, servers=3, agents=2)) as lab_stack:
        yield lab_stack


def _log_times(text: str, pattern: str) -> list[float]:
    """Epoch seconds of the stand-in's log lines (time="...Z") that match `pattern`."""
    times = []
    for line in text.splitlines():
        match = re.match(r'time="([^"]+)Z"', line)
        if match and re.search(pattern, line):
            stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            times.append(stamp.replace(tzinfo=datetime.timezone.utc).timestamp())
    return times


def test_given_token_and_haproxy_killed_on_the_vip_holder_while_agents_join(stack, record_property):
    lab = stack.lab
    killed = threading.Event()
    failover: dict = {}
    lock = threading.Lock()

    def kill_haproxy_on_the_vip_holder() -> None:
        try:
            # The VIP settled on its primary (it may sit on lb-2 until lb-1 preempts it).
            failover["holders"] = stack.wait_vip_on("lb-1")
            if failover["holders"] != ["lb-1"]:
                return
            failover["kill_epoch"] = time.time()
            failover["kill"] = time.monotonic()
            stack.host("lb-1").exec("killall -9 haproxy")
        finally:
            killed.set()
        while time.monotonic() < failover["kill"] + 30:
            if lab.vip in stack.host("lb-2").ipv4_addresses():
                failover["moved"] = time.monotonic()
                failover["moved_epoch"] = time.time()
                break
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_haproxy_on_the_vip_holder, daemon=True)

    def gate(record) -> None:
        # Each agent's command starts only once HAProxy is dead on the VIP holder: every join runs
        # into the failover.
        if record.name.startswith("agents-"):
            with lock:
                if not watcher.is_alive() and not killed.is_set():
                    watcher.start()
            assert killed.wait(40), "HAProxy was not killed in time"

    stack.engine.on_command_start = gate
    try:
        result = stack.apply(token=GIVEN_TOKEN)
    finally:
        stack.engine.on_command_start = None
        watcher.join(timeout=40)

    # The joins succeeded and the VIP moved.
    assert failover["holders"] == ["lb-1"], f"the VIP did not settle on lb-1: {failover['holders']}"
    assert "moved" in failover, "the VIP did not move to lb-2 within 30 s"
    seconds = failover["moved"] - failover["kill"]
    record_property("vip_failover_seconds", round(seconds, 2))
    print(f"\nVIP failover: {seconds:.2f} s from HAProxy killed on lb-1 to the VIP on lb-2")
    assert stack.vip_holders() == ["lb-2"]
    assert seconds < 10
    assert stack.kubectl_nodes() == {n: "Ready" for n in NODES}
    assert stack.host("lb-1").unit_state("haproxy") == "failed"
    assert stack.host("lb-2").unit_state("haproxy") == "active"

    retried = {}
    for agent in ("agent-1", "agent-2"):
        event = result.event(f"agents-{agent}")
        assert event.status == 0 and event.start >= failover["kill"] - stack.engine._t0
        log = stack.host(agent).unit_log("rke2-agent")
        assert f"registered through https://{lab.vip}:9345" in log
        registered = _log_times(log, "registered through")
        assert registered and registered[-1] >= failover["kill_epoch"]
        retried[agent] = _log_times(log, "retrying")
    # At least one join hit the dead HAProxy (refused while the VIP was still on lb-1) and recovered.
    assert any(times and min(times) < failover["moved_epoch"] for times in retried.values()), retried

    # The token given in the config is every node's token, and the first server generated none.
    assert "servers-token" not in {e.name for e in result.events}
    for name in NODES:
        config = yaml.safe_load(stack.host(name).read("/etc/rancher/rke2/config.yaml"))
        assert config["token"] == GIVEN_TOKEN, name
    assert stack.host("server-1").read("/var/lib/rancher/rke2/server/node-token").strip().endswith("::server:" + GIVEN_TOKEN)

    # The exported kubeconfig works through the VIP, now on lb-2.
    kubeconfig = yaml.safe_load(result.exports["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{lab.vip}:6443"

    # Re-running the program heals lb-1: haproxy.sh finds HAProxy not active and starts it, and
    # Keepalived's higher priority takes the VIP back.
    calls_before = len(stack.host("lb-1").systemctl_calls())
    stack.apply(token=GIVEN_TOKEN, rerun_all=True)
    started = [c["args"] for c in stack.host("lb-1").systemctl_calls()[calls_before:] if c["args"][0] == "start"]
    assert started == [["start", "haproxy"]]
    deadline = time.monotonic() + 20
    while stack.vip_holders() != ["lb-1"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.vip_holders() == ["lb-1"]
    assert stack.kubectl_nodes() == {n: "Ready" for n in NODES}
