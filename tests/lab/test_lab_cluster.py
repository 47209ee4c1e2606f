"""Lab scenarios on one cluster built from an empty lab: 2 LB hosts, 3 servers, 2 agents (+2 agent
hosts added later), generated token.

The tests run in file order and build on each other, as operations on one cluster do: build (1),
re-run everything (2), scale out (7), an agent joining while a server is down (5), a wrong token
on one agent (3). Scenario numbers are those of the lab's issue.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tempfile
import time

import pytest
import yaml

from components.load_balancer import Backend, render_haproxy_config, render_keepalived_config
from tests.lab.engine import CommandFailed, commands_shell_lines
from tests.lab.hosts import Topology
from tests.lab.stack import KEEPALIVED_PASSWORD, LabStack, ProcessWatcher, host_logs, snapshot_files

pytestmark = pytest.mark.lab

SERVERS = ["server-1", "server-2", "server-3"]
FIRST_AGENTS = ["agent-1", "agent-2"]
TAINT = "CriticalAddonsOnly=true:NoExecute"
QUERY_VERBS = {"is-active", "is-enabled", "is-failed", "status"}


@pytest.fixture(scope="module")
def stack():
    with LabStack.checked(Topology(lbs=2, servers=3, agents=4)) as lab_stack:
        yield lab_stack


@pytest.fixture(scope="module")
def built(stack):
    """Scenario 1's apply, from an empty lab, with every process list sampled while it runs."""
    with ProcessWatcher() as watcher:
        result = stack.apply(agents=FIRST_AGENTS)
    return {"result": result, "watcher": watcher}


def mutating_calls(host, since: int) -> list[dict]:
    return [c for c in host.systemctl_calls()[since:] if c["args"] and c["args"][0] not in QUERY_VERBS]


def expected_node_config(stack, name: str, role: str, token: str | None) -> dict:
    lab = stack.lab
    config: dict = {}
    if name != "server-1":
        config["server"] = f"https://{lab.vip}:9345"
    if token is not None:
        config["token"] = token
    if role == "server":
        config["tls-san"] = [lab.vip]
    config["node-name"] = name
    if role == "server":
        config["node-taint"] = [TAINT]
    return config


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def node_token(stack) -> str:
    return stack.host("server-1").read("/var/lib/rancher/rke2/server/node-token").strip()


# --------------------------------------------------------------------------------------------------
# Scenario 1


def test_build_from_empty_lab_makes_every_node_ready(stack, built):
    result = built["result"]
    names = {e.name for e in result.events}
    assert names == {
        "lb-lb-1-haproxy", "lb-lb-1-keepalived", "lb-lb-2-haproxy", "lb-lb-2-keepalived",
        "servers-server-1", "servers-token", "servers-server-2", "servers-server-3",
        "agents-agent-1", "agents-agent-2", "cluster-nodes-ready", "cluster-kubeconfig",
    }
    assert all(e.action == "create" and e.status == 0 for e in result.events)
    assert stack.kubectl_nodes() == {n: "Ready" for n in [*SERVERS, *FIRST_AGENTS]}
    # The node script printed each node's name, which the program exports.
    assert [s["name"] for s in result.exports["servers"]] == SERVERS
    assert [a["name"] for a in result.exports["agents"]] == FIRST_AGENTS

    # Servers joined one at a time; agents ran alongside the joins, not after them.
    ev = {e.name: e for e in result.events}
    assert ev["servers-server-2"].start >= ev["servers-token"].end
    assert ev["servers-server-3"].start >= ev["servers-server-2"].end
    for agent in FIRST_AGENTS:
        assert ev[f"agents-{agent}"].start >= ev["servers-token"].end
        assert ev[f"agents-{agent}"].start < ev["servers-server-2"].end
    assert ev["cluster-nodes-ready"].start >= max(e.end for e in result.events if e.script == "rke2-node.sh")


def test_load_balancer_configs_pass_their_checks_and_match(stack, built):
    lab = stack.lab
    backends = [Backend(n, stack.host(n).address) for n in SERVERS]
    for index, lb in enumerate(["lb-1", "lb-2"]):
        host = stack.host(lb)
        checked = host.exec("haproxy -c -f /etc/haproxy/haproxy.cfg", check=False)
        assert checked.returncode == 0, checked.stderr.decode()
        assert host.exists("/etc/keepalived/keepalived.conf")
        checked = host.exec("keepalived -t -f /etc/keepalived/keepalived.conf", check=False)
        assert checked.returncode == 0, checked.stderr.decode()

        assert host.read("/etc/haproxy/haproxy.cfg") == render_haproxy_config(backends, 9345, 6443)
        assert stat.S_IMODE(host.path("/etc/haproxy/haproxy.cfg").stat().st_mode) == 0o644
        peer = stack.host(["lb-2", "lb-1"][index])
        keepalived = render_keepalived_config(
            vip=lab.vip, source_ip=host.address, peer_ip=peer.address, primary=index == 0,
            virtual_router_id=51, password=KEEPALIVED_PASSWORD, router_name=lb,
        ).replace("@INTERFACE@", "eth0")
        assert host.read("/etc/keepalived/keepalived.conf") == keepalived
        assert stat.S_IMODE(host.path("/etc/keepalived/keepalived.conf").stat().st_mode) == 0o600
        assert f"auth_pass {KEEPALIVED_PASSWORD}" in keepalived and "interface eth0" in keepalived
        assert host.unit_state("haproxy") == "active" and host.unit_state("keepalived") == "active"
        states = stack.wait_haproxy_state(lb, "server-3", "UP")
        assert {s for (_, name), s in states.items()} == {"UP"}, states
    # The primary holds the VIP (after Keepalived's start it may briefly sit on lb-2 until lb-1 preempts).
    assert stack.wait_vip_on("lb-1") == ["lb-1"]


def test_node_configs_are_private_and_as_expected(stack, built):
    token = node_token(stack)
    for name in [*SERVERS, *FIRST_AGENTS]:
        host = stack.host(name)
        path = host.path("/etc/rancher/rke2/config.yaml")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        role = "server" if name in SERVERS else "agent"
        # The first server generates the token; the others get the one read back from it.
        expected = expected_node_config(stack, name, role, None if name == "server-1" else token)
        assert yaml.safe_load(path.read_text()) == expected, name
        service = f"rke2-{role}"
        assert host.unit_state(service) == "active"
        assert any(c["args"][:1] == ["enable"] and service in c["args"] for c in host.systemctl_calls())


def test_exported_kubeconfig_lists_the_nodes_through_the_vip(stack, built):
    result = built["result"]
    assert "kubeconfig" in result.secret_exports
    kubeconfig = yaml.safe_load(result.exports["kubeconfig"])
    assert [c["cluster"]["server"] for c in kubeconfig["clusters"]] == [f"https://{stack.lab.vip}:6443"]
    assert result.exports["apiUrl"] == f"https://{stack.lab.vip}:6443"
    # A client outside the cluster (this machine's root namespace) with the stand-in's kubectl.
    with tempfile.TemporaryDirectory() as tmp:
        config_path = os.path.join(tmp, "kubeconfig")
        kubectl_path = os.path.join(tmp, "kubectl")
        with open(config_path, "w") as handle:
            handle.write(result.exports["kubeconfig"])
        with open(kubectl_path, "wb") as handle:
            handle.write(stack.host("server-1").path("/var/lib/rancher/rke2/bin/kubectl").read_bytes())
        out = subprocess.run(
            ["/usr/bin/python3", kubectl_path, "--kubeconfig", config_path, "get", "nodes", "--no-headers"],
            capture_output=True, text=True, timeout=30,
        )
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()}
    assert listed == {n: "Ready" for n in [*SERVERS, *FIRST_AGENTS]}


def test_token_is_in_no_process_list_and_no_log(stack, built):
    result, watcher = built["result"], built["watcher"]
    token = node_token(stack)
    assert re.fullmatch(r"K10[0-9a-f]{64}::server:\S+", token), "the stand-in writes RKE2's token format"
    password = token.rsplit(":", 1)[1]
    assert watcher.samples > 10
    for secret in (token, password):
        assert watcher.containing(secret) == []
        assert not [line for line in commands_shell_lines(result.records) if secret in line]
        for host in stack.lab.hosts.values():
            leaked = [path for path, data in host_logs(host).items() if secret.encode() in data]
            assert leaked == [], f"{host.name}: {leaked}"
        assert all(secret not in (e.error or "") for e in result.events)
        assert not [p for _, p in stack.installer.requests if secret in p]
        for name, value in result.exports.items():
            assert secret not in str(value), name
    # The node script and the token reader kept everything off their output but the node's name.
    for record in result.records:
        if record.script == "rke2-node.sh":
            assert token not in str(record.outputs.get("stderr"))


# --------------------------------------------------------------------------------------------------
# Scenario 2


def test_rerun_of_every_command_changes_no_file_and_restarts_nothing(stack, built):
    hosts = list(stack.lab.hosts.values())
    before = {h.name: snapshot_files(h) for h in hosts}
    calls = {h.name: len(h.systemctl_calls()) for h in hosts}
    pids = {(h.name, u): h.unit_main_pid(u) for h in hosts for u in ("haproxy", "keepalived", "rke2-server", "rke2-agent")}

    result = stack.apply(agents=FIRST_AGENTS, rerun_all=True)

    assert {e.action for e in result.events} == {"rerun"}
    assert len(result.events) == len(built["result"].events)
    for host in hosts:
        assert snapshot_files(host) == before[host.name], host.name
        assert mutating_calls(host, calls[host.name]) == [], host.name
    assert {(h.name, u): h.unit_main_pid(u) for h in hosts for u in ("haproxy", "keepalived", "rke2-server", "rke2-agent")} == pids
    assert stack.kubectl_nodes() == {n: "Ready" for n in [*SERVERS, *FIRST_AGENTS]}


# --------------------------------------------------------------------------------------------------
# Scenario 7


def test_scale_out_runs_only_the_new_agents_commands(stack, built):
    others = [h for h in stack.lab.hosts.values() if h.name != "agent-3"]
    before = {h.name: snapshot_files(h) for h in others}
    calls = {h.name: len(h.systemctl_calls()) for h in others}

    result = stack.apply(agents=[*FIRST_AGENTS, "agent-3"])

    ran = {e.name: e.action for e in result.ran()}
    # The final check lists every node and carries a trigger over every node command, so it runs again
    # (it only reads); nothing else does.
    assert ran == {"agents-agent-3": "create", "cluster-nodes-ready": "replace"}
    for host in others:
        assert snapshot_files(host) == before[host.name], host.name
        assert mutating_calls(host, calls[host.name]) == [], host.name
    assert stack.kubectl_nodes()["agent-3"] == "Ready"
    assert [a["name"] for a in result.exports["agents"]] == [*FIRST_AGENTS, "agent-3"]


# --------------------------------------------------------------------------------------------------
# Scenario 5


def test_agent_joins_through_the_lb_while_a_server_is_stopped(stack, built):
    down = stack.host("server-3")
    down.exec("systemctl stop rke2-server")
    assert down.unit_state("rke2-server") == "inactive"
    assert not [p for p in down.pids() if b"rke2" in _cmdline(p)]
    for lb in ("lb-1", "lb-2"):
        states = stack.wait_haproxy_state(lb, "server-3", "DOWN")
        assert states[("registration", "server-1")] == "UP" and states[("kubernetes-api", "server-2")] == "UP"
    before = {n: "Ready" for n in [*SERVERS, "agent-1", "agent-2", "agent-3"]} | {"server-3": "NotReady"}
    assert stack.wait_nodes(before) == before

    restarted = {}

    def bring_server_back(record):
        # The final check waits for every node, server-3 included: start it again once the agent's
        # own command has finished, so the agent joined while server-3 was down.
        if record.name == "cluster-nodes-ready":
            restarted["at"] = time.monotonic() - stack.engine._t0
            down.exec("systemctl start --no-block rke2-server")

    stack.engine.on_command_start = bring_server_back
    try:
        result = stack.apply(agents=[*FIRST_AGENTS, "agent-3", "agent-4"])
    finally:
        stack.engine.on_command_start = None

    join = result.event("agents-agent-4")
    assert join.status == 0 and join.end <= restarted["at"]
    assert {e.name for e in result.ran()} == {"agents-agent-4", "cluster-nodes-ready"}
    assert f"registered through https://{stack.lab.vip}:9345" in stack.host("agent-4").unit_log("rke2-agent")
    # The final check waited for server-3, restarted from its etcd data, to be Ready again.
    assert down.unit_state("rke2-server") == "active"
    assert stack.kubectl_nodes() == {n: "Ready" for n in [*SERVERS, "agent-1", "agent-2", "agent-3", "agent-4"]}
    for lb in ("lb-1", "lb-2"):
        stack.wait_haproxy_state(lb, "server-3", "UP")
    # HAProxy said so itself, in the log the lab keeps of its stderr.
    assert re.search(r"Server registration/server-3 is DOWN", stack.host("lb-1").unit_log("haproxy"))


# --------------------------------------------------------------------------------------------------
# Scenario 3 (wrong token); the given token is in test_lab_failover.py, the generated one above.


def test_wrong_token_on_one_agent_fails_naming_it_and_the_cluster_stays_healthy(stack, built):
    all_agents = ["agent-1", "agent-2", "agent-3", "agent-4"]
    token = node_token(stack)
    wrong = token.rsplit(":", 1)[0] + ":not-the-cluster-password"
    stack.engine.stdin_filters["agents-agent-2"] = lambda text: text.replace(token, wrong)
    try:
        with pytest.raises(CommandFailed) as failure:
            stack.apply(agents=all_agents)
    finally:
        stack.engine.stdin_filters.clear()
    assert failure.value.node == "agent-2" and failure.value.resource == "agents-agent-2"
    assert "agent-2" in str(failure.value) and "rke2-agent failed" in str(failure.value)
    assert "401 Unauthorized" in stack.host("agent-2").unit_log("rke2-agent")
    assert stack.host("agent-2").unit_state("rke2-agent") == "failed"
    assert token not in str(failure.value) and wrong not in str(failure.value)

    # The rest of the cluster is untouched and healthy.
    assert {e.name for e in stack.engine.last.ran()} == {"agents-agent-2"}
    nodes = stack.kubectl_nodes()
    assert all(nodes[n] == "Ready" for n in [*SERVERS, "agent-1", "agent-3", "agent-4"]), nodes
    for name in SERVERS:
        assert stack.host(name).unit_state("rke2-server") == "active"
    for lb in ("lb-1", "lb-2"):
        assert stack.host(lb).unit_state("haproxy") == "active"
        assert set(stack.haproxy_states(lb).values()) == {"UP"}
    assert stack.vip_holders() == ["lb-1"]

    # The failed command left no state, but its inputs equal the recorded ones: as with Pulumi, it takes
    # `--replace` to run it again. Then agent-2 rejoins with the right token.
    result = stack.apply(agents=all_agents, replace=["agents-agent-2"])
    assert {e.name for e in result.ran()} == {"agents-agent-2"}
    assert stack.kubectl_nodes() == {n: "Ready" for n in [*SERVERS, *all_agents]}


# --------------------------------------------------------------------------------------------------
# Scale down and back (the engine's delete step; the README's "removing a node forgets its command")


def test_removing_an_agent_forgets_its_command_and_adding_it_back_changes_nothing(stack, built):
    agent = stack.host("agent-4")
    result = stack.apply(agents=["agent-1", "agent-2", "agent-3"])
    assert {e.name: e.action for e in result.ran()} == {"cluster-nodes-ready": "replace"}
    assert "agents-agent-4" not in stack.engine.state
    # The program has no delete command: the node is neither drained nor uninstalled.
    assert agent.unit_state("rke2-agent") == "active"

    before, calls = snapshot_files(agent), len(agent.systemctl_calls())
    result = stack.apply(agents=["agent-1", "agent-2", "agent-3", "agent-4"])
    assert {e.name: e.action for e in result.ran()} == {"agents-agent-4": "create", "cluster-nodes-ready": "replace"}
    assert snapshot_files(agent) == before
    assert mutating_calls(agent, calls) == []
