"""The lab engine's own rules (state between applies, re-run-all, replace, delete, failure, parallelism),
with its SSH step replaced by a recorder: no hosts, no root, so these run everywhere."""

from __future__ import annotations

import shlex
import threading
import time

import pytest

from tests.harness import GENERATED_TOKEN, SERVER_KUBECONFIG, TEST_SSH_KEY
from tests.lab.engine import CommandFailed, LabEngine, _StateEntry

SERVERS = [("10.0.0.21", "server-1"), ("10.0.0.22", "server-2"), ("10.0.0.23", "server-3")]
AGENTS = [("10.0.0.31", "agent-1"), ("10.0.0.32", "agent-2"), ("10.0.0.33", "agent-3")]


def config(agents=2, token=None):
    value = {
        "provider": "hosts",
        "version": "v1.33.5+rke2r1",
        "installUrl": "http://10.0.0.1:8080/install.sh",
        "readyTimeoutSeconds": 60,
        "registration": {"mode": "haproxy-keepalived", "address": "10.0.0.100",
                         "hosts": [{"address": "10.0.0.11", "name": "lb-1"}, {"address": "10.0.0.12", "name": "lb-2"}]},
        "servers": {"taint": True, "hosts": [{"address": a, "name": n} for a, n in SERVERS]},
        "agents": {"hosts": [{"address": a, "name": n} for a, n in AGENTS[:agents]]},
        "sshPrivateKey": TEST_SSH_KEY,
        "keepalivedPassword": "kh-lab1",
    }
    if token:
        value["token"] = token
    return value


class RecordingEngine(LabEngine):
    """A LabEngine whose remote side answers like the scripts would, and records every call."""

    def __init__(self, delay: float = 0.0, fail: dict | None = None):
        super().__init__()
        self.calls: list[tuple[str, str, str]] = []
        self.delay = delay
        self.fail = fail or {}
        self._calls_lock = threading.Lock()

    def _ssh(self, connection, command, stdin):
        with self._calls_lock:
            self.calls.append((connection["host"], command, stdin))
        argv = shlex.split(command)
        script, args = (argv[3], argv[4:]) if argv[:2] == ["bash", "-c"] else (None, argv)
        time.sleep(self.delay)
        if connection["host"] in self.fail:
            return 1, "", self.fail[connection["host"]]
        if script == "rke2-node.sh":
            return 0, args[4] + "\n", "rke2-node: up\n"
        if script == "read-secret-file.sh":
            return 0, (GENERATED_TOKEN + "\n") if args[0].endswith("node-token") else SERVER_KUBECONFIG, ""
        return 0, "", ""


def names(result, action=None):
    return {e.name for e in result.events if (action is None and e.ran) or e.action == action}


ALL = {
    "lb-lb-1-haproxy", "lb-lb-1-keepalived", "lb-lb-2-haproxy", "lb-lb-2-keepalived",
    "servers-server-1", "servers-token", "servers-server-2", "servers-server-3",
    "agents-agent-1", "agents-agent-2", "cluster-nodes-ready", "cluster-kubeconfig",
}


def test_state_between_applies_rerun_all_and_scale_out():
    engine = RecordingEngine()
    first = engine.apply(config())
    assert names(first, "create") == ALL and len(engine.calls) == 12
    assert "kubeconfig" in first.secret_exports
    # The token reaches joiners on stdin only, never on a command line.
    assert all(GENERATED_TOKEN not in command for _, command, _ in engine.calls)
    assert any(GENERATED_TOKEN in stdin for host, _, stdin in engine.calls if host == "10.0.0.31")

    second = engine.apply(config())
    assert names(second) == set() and names(second, "unchanged") == ALL and len(engine.calls) == 12
    assert second.exports == first.exports

    rerun = engine.apply(config(), rerun_all=True)
    assert names(rerun, "rerun") == ALL and len(engine.calls) == 24

    grown = engine.apply(config(agents=3))
    assert {e.name: e.action for e in grown.ran()} == {"agents-agent-3": "create", "cluster-nodes-ready": "replace"}

    shrunk = engine.apply(config(agents=2))
    assert {e.name: e.action for e in shrunk.ran()} == {"cluster-nodes-ready": "replace"}
    assert "agents-agent-3" not in engine.state


def test_replace_and_delete_follow_pulumi():
    engine = RecordingEngine()
    engine.apply(config())
    result = engine.apply(config(), replace=["agents-agent-1"])
    assert {e.name: e.action for e in result.ran()} == {"agents-agent-1": "replace"}

    # A command that left the program runs its `delete` (the program has none today; this one is planted).
    planted = dict(engine.state["agents-agent-2"].inputs, delete="echo bye")
    engine.state["gone"] = _StateEntry("x", "y", {}, planted, 0)
    calls = len(engine.calls)
    result = engine.apply(config())
    assert [c[1] for c in engine.calls[calls:]] == ["echo bye"]
    assert {e.name: e.action for e in result.ran()} == {"gone": "delete"} and "gone" not in engine.state


def test_a_failure_names_the_node_stops_new_commands_and_is_retried_next_time():
    engine = RecordingEngine(fail={"10.0.0.32": "rke2-node[agent]: rke2-agent failed; see journalctl -u rke2-agent\n"})
    with pytest.raises(CommandFailed) as failure:
        engine.apply(config())
    assert failure.value.node == "agent-2" and failure.value.address == "10.0.0.32"
    assert "agents-agent-2 on node agent-2 (10.0.0.32) exited with status 1" in str(failure.value)
    assert "rke2-agent failed" in str(failure.value)
    # Commands started before the failure finished and are recorded; none started after it.
    missing = ALL - set(engine.state)
    assert {"agents-agent-2", "cluster-nodes-ready", "cluster-kubeconfig"} <= missing
    assert {e.name for e in engine.last.events} == ALL - missing | {"agents-agent-2"}

    engine.fail.clear()
    result = engine.apply(config())
    assert names(result) == missing


def test_independent_commands_run_at_once_and_server_joins_one_at_a_time():
    engine = RecordingEngine(delay=0.3)
    result = engine.apply(config(agents=3))
    ev = {e.name: e for e in result.events}
    assert ev["servers-server-3"].start >= ev["servers-server-2"].end >= ev["servers-server-2"].start >= ev["servers-token"].end
    agent_starts = [ev[f"agents-agent-{i}"].start for i in (1, 2, 3)]
    assert max(agent_starts) - min(agent_starts) < 0.2
    assert all(start < ev["servers-server-2"].end for start in agent_starts)
    # Serial path: LB chain || server-1, token, two joins, check, kubeconfig = 6 x 0.3 s.
    assert result.wall < 6 * 0.3 + 1.0
