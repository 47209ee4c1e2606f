"""The whole program (`__main__.py` via runpy) under Pulumi mocks, provider `hosts`."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time

import pytest
import yaml

from tests.harness import (
    COMMAND,
    GENERATED_TOKEN,
    ROOT,
    STACKS,
    RecordingMocks,
    plain_strings,
    run_program,
    run_stack,
    stack_config,
    with_test_secrets,
    unwrap,
)
from tests.test_config import VALID

GIVEN_TOKEN = "given-token-0123456789abcdef"


def node_config(record) -> dict:
    return yaml.safe_load(record.plain("stdin"))


def test_onprem_registers_lb_servers_agents_and_check():
    result = run_stack("onprem")
    mocks = result.mocks
    assert len(mocks.of_type("kube-ha:index:LoadBalancer")) == 1
    assert len(mocks.of_type("kube-ha:index:ServerPool")) == 1
    assert len(mocks.of_type("kube-ha:index:AgentPool")) == 1
    assert [r.name for r in mocks.commands("haproxy.sh")] == ["lb-192-168-10-11-haproxy", "lb-192-168-10-12-haproxy"]
    assert len(mocks.commands("keepalived.sh")) == 2
    nodes = mocks.commands("rke2-node.sh")
    assert sorted(r.name for r in nodes) == sorted(
        ["servers-server-1", "servers-server-2", "servers-server-3", "agents-agent-1", "agents-agent-2"]
    )
    assert [r.name for r in mocks.commands("wait-nodes-ready.sh")] == ["cluster-nodes-ready"]


def test_first_server_bootstraps_and_others_join_through_the_address():
    mocks = run_stack("onprem").mocks
    first = node_config(mocks.named("servers-server-1"))
    assert "server" not in first
    assert "token" not in first, "no token configured: the first server generates it"
    assert first["tls-san"] == ["192.168.10.100", "k8s.example.internal"]
    assert first["node-taint"] == ["CriticalAddonsOnly=true:NoExecute"]
    for name in ("servers-server-2", "servers-server-3"):
        joiner = node_config(mocks.named(name))
        assert joiner["server"] == "https://192.168.10.100:9345"
        assert joiner["token"] == GENERATED_TOKEN, "joins use the token read back from the first server"
        assert joiner["tls-san"][0] == "192.168.10.100"
    for name in ("agents-agent-1", "agents-agent-2"):
        agent = node_config(mocks.named(name))
        assert agent["server"] == "https://192.168.10.100:9345"
        assert agent["token"] == GENERATED_TOKEN
        assert "tls-san" not in agent and "node-taint" not in agent
        assert mocks.named(name).script_args[0] == "agent"


def test_token_is_read_back_from_the_first_server():
    mocks = run_stack("onprem").mocks
    reader = mocks.named("servers-token")
    assert reader.plain("connection")["host"] == "192.168.10.21"
    assert reader.script_args[0] == "/var/lib/rancher/rke2/server/node-token"
    assert reader.plain("logging") == "none"


def test_given_token_is_used_everywhere_and_nothing_reads_it_back():
    mocks = run_stack("onprem", {"token": GIVEN_TOKEN}).mocks
    assert not [r for r in mocks.records if r.name == "servers-token"]
    for record in mocks.commands("rke2-node.sh"):
        assert node_config(record)["token"] == GIVEN_TOKEN


def test_node_commands_run_the_pinned_version_and_installer():
    mocks = run_stack("onprem", {"installUrl": "https://mirror.example.internal/rke2/install.sh"}).mocks
    for record in mocks.commands("rke2-node.sh"):
        role, version, url, timeout, name = record.script_args
        assert version == "v1.33.5+rke2r1"
        assert url == "https://mirror.example.internal/rke2/install.sh"
        assert timeout == "900"
        assert record.name.endswith(name)
        assert record.plain("connection")["user"] == "root"
        assert record.argv[0] == "bash", "root needs no sudo"


def test_non_root_user_runs_scripts_through_sudo():
    mocks = run_stack("single").mocks
    record = mocks.named("servers-dev-server")
    assert record.argv[:3] == ["sudo", "-n", "bash"]
    assert record.plain("connection")["user"] == "ubuntu"


def test_haproxy_config_lists_every_server_on_both_ports():
    mocks = run_stack("onprem").mocks
    config = mocks.named("lb-192-168-10-11-haproxy").plain("stdin")
    for port in (9345, 6443):
        assert f"bind *:{port}" in config
        for address in ("192.168.10.21", "192.168.10.22", "192.168.10.23"):
            assert f"{address}:{port} check" in config
    assert config.count("option tcp-check") == 2
    assert mocks.named("lb-192-168-10-12-haproxy").plain("stdin") == config


def test_keepalived_configs_pair_the_two_hosts():
    mocks = run_stack("onprem").mocks
    first = mocks.named("lb-192-168-10-11-keepalived")
    second = mocks.named("lb-192-168-10-12-keepalived")
    a, b = first.plain("stdin"), second.plain("stdin")
    assert "state MASTER" in a and "priority 101" in a
    assert "state BACKUP" in b and "priority 100" in b
    assert "unicast_src_ip 192.168.10.11" in a and "192.168.10.12\n" in a
    assert "unicast_src_ip 192.168.10.12" in b and "192.168.10.11\n" in b
    assert "192.168.10.100/32" in a and "192.168.10.100/32" in b
    assert first.script_args == ["192.168.10.11", ""]


def test_exports():
    result = run_stack("onprem")
    exports = result.exports
    assert exports["registrationAddress"] == "192.168.10.100"
    assert exports["apiUrl"] == "https://192.168.10.100:6443"
    assert [s["name"] for s in exports["servers"]] == ["server-1", "server-2", "server-3"]
    assert [a["address"] for a in exports["agents"]] == ["192.168.10.31", "192.168.10.32"]
    kubeconfig = yaml.safe_load(exports["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://192.168.10.100:6443"
    assert result.secret_exports == {"kubeconfig"}


def test_cluster_check_waits_for_every_node_then_reads_kubeconfig():
    mocks = run_stack("onprem").mocks
    check = mocks.named("cluster-nodes-ready")
    kubectl, kubeconfig, timeout, *names = check.script_args
    assert kubectl == "/var/lib/rancher/rke2/bin/kubectl"
    assert kubeconfig == "/etc/rancher/rke2/rke2.yaml"
    assert names == ["server-1", "server-2", "server-3", "agent-1", "agent-2"]
    reader = mocks.named("cluster-kubeconfig")
    assert reader.script_args[0] == "/etc/rancher/rke2/rke2.yaml"
    assert reader.plain("logging") == "none"


def test_unnamed_hosts_use_the_name_each_node_reports():
    config = copy.deepcopy(with_test_secrets(VALID))
    for host in config["agents"]["hosts"]:
        host.pop("name")
    mocks = run_program(config).mocks
    agent = mocks.named("agents-10-0-0-31")
    assert agent.script_args[4] == "", "no name given: the script uses the hostname"
    names = mocks.named("cluster-nodes-ready").script_args[3:]
    assert names[-1] == "host-agents-10-0-0-31", "the check uses the name the node script printed"


def test_secrets_never_appear_in_plain_inputs():
    """Token, SSH key, Keepalived password and kubeconfig stay wrapped as secrets in every input.

    Outputs are not scanned: the mocks return command output plain, as the provider does before the
    engine applies `additionalSecretOutputs`; the exports and the program's own wrapping are checked
    instead (test_components.py checks the pools' token and kubeconfig outputs are secret).
    """
    for token in (GIVEN_TOKEN, None):
        overrides = {"token": token} if token else {}
        result = run_stack("onprem", overrides)
        config = with_test_secrets(stack_config("onprem"))
        needles = {
            "token": token or GENERATED_TOKEN,
            "ssh key": "test-double-not-a-key",
            "keepalived password": config["keepalivedPassword"],
            "kubeconfig": "client-key-data",
        }
        for record in result.mocks.records:
            for path, text in plain_strings(record.inputs):
                for what, needle in needles.items():
                    assert needle not in text, f"{what} in plain input {record.name}{path}"
        assert "kubeconfig" in result.secret_exports
        for name, value in result.exports.items():
            if name not in result.secret_exports:
                for what, needle in needles.items():
                    assert needle not in json.dumps(value), f"{what} in plain export {name}"


def test_secret_commands_log_nothing():
    mocks = run_stack("onprem").mocks
    for record in mocks.commands():
        if record.script in ("rke2-node.sh", "keepalived.sh", "read-secret-file.sh"):
            assert record.plain("logging") == "none", record.name


def test_secrets_are_not_on_any_command_line():
    result = run_stack("onprem", {"token": GIVEN_TOKEN})
    for record in result.mocks.commands():
        create = record.plain("create")
        assert GIVEN_TOKEN not in create
        assert "kha-Test" not in create


def snapshot(mocks: RecordingMocks) -> list:
    return sorted(
        (r.type, r.name, json.dumps(unwrap(r.inputs), sort_keys=True, default=str)) for r in mocks.records
    )


def test_two_runs_register_identical_resources_and_inputs():
    first = snapshot(run_stack("onprem").mocks)
    second = snapshot(run_stack("onprem").mocks)
    assert first == second


def test_adding_an_agent_leaves_the_others_unchanged():
    before = run_stack("onprem").mocks
    config = stack_config("onprem")
    config["agents"]["hosts"].append({"address": "192.168.10.33", "name": "agent-3"})
    after = run_stack("onprem", {"agents": config["agents"]}).mocks
    old = {name: inputs for _, name, inputs in snapshot(before)}
    new = {name: inputs for _, name, inputs in snapshot(after)}
    added = set(new) - set(old)
    assert added == {"agents-agent-3"}
    changed = {name for name in old if old[name] != new[name]}
    # The final check lists every node, so it alone runs again; no other node is touched.
    assert changed == {"cluster-nodes-ready", "agents"}, changed


def test_a_changed_node_config_changes_that_nodes_trigger_only():
    before = {r.name: r for r in run_stack("onprem").mocks.commands("rke2-node.sh")}
    config = stack_config("onprem")
    config["agents"]["hosts"][0]["internalAddress"] = "192.168.11.31"
    after = {r.name: r for r in run_stack("onprem", {"agents": config["agents"]}).mocks.commands("rke2-node.sh")}
    changed = {name for name in before if unwrap(before[name].inputs) != unwrap(after[name].inputs)}
    assert changed == {"agents-agent-1"}
    trigger = unwrap(after["agents-agent-1"].inputs["triggers"])[0]
    assert trigger == hashlib.sha256(after["agents-agent-1"].plain("stdin").encode()).hexdigest()


class SleepingMocks(RecordingMocks):
    """Records when each command runs; node installs take a while, as on real machines."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.spans: dict[str, tuple[float, float]] = {}
        self.span_lock = threading.Lock()

    def run_command(self, record):
        start = time.monotonic()
        if record.script == "rke2-node.sh":
            time.sleep(self.seconds)
        outputs = super().run_command(record)
        with self.span_lock:
            self.spans[record.name] = (start, time.monotonic())
        return outputs


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_servers_join_one_at_a_time_and_agents_overlap_the_joins():
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    mocks = SleepingMocks(0.3)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_default_executor(ThreadPoolExecutor(max_workers=16))
    try:
        run_stack("onprem", mocks=mocks)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    spans = mocks.spans
    s1, s2, s3 = (spans[f"servers-server-{i}"] for i in (1, 2, 3))
    a1, a2 = spans["agents-agent-1"], spans["agents-agent-2"]
    assert s1[1] <= spans["servers-token"][0], "the token is read after the first server is up"
    assert spans["servers-token"][1] <= s2[0] and s2[1] <= s3[0], "server joins are serial"
    for lb in ("lb-192-168-10-11-keepalived", "lb-192-168-10-12-keepalived"):
        assert spans[lb][1] <= s2[0] and spans[lb][1] <= a1[0], "joins wait for the load balancer"
    assert overlaps(a1, a2), "agents join in parallel"
    assert overlaps(a1, s2) and overlaps(a2, s2), "agents do not wait for the other servers' joins"
    last = max(s3[1], a1[1], a2[1])
    assert spans["cluster-nodes-ready"][0] >= last
    assert spans["cluster-kubeconfig"][0] >= spans["cluster-nodes-ready"][1]


@pytest.mark.parametrize("stack", sorted(p.name[len("Pulumi."):-len(".yaml")] for p in STACKS.glob("Pulumi.*.yaml")))
def test_every_stack_file_evaluates(stack):
    result = run_stack(stack)
    assert result.mocks.commands("rke2-node.sh")
    assert "kubeconfig" in result.secret_exports


def test_pulumi_yaml_declares_every_scalar_key_with_type_and_description():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "kube-ha"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    assert project["stackConfigDir"] == "stacks"
    declared = project["config"]
    for key in ("provider", "distribution", "version", "installUrl", "readyTimeoutSeconds", "sshPrivateKey",
                "token", "keepalivedPassword", "tlsSan"):
        assert declared[key]["type"] in ("string", "integer", "boolean", "array"), key
        assert declared[key]["description"], key
    assert declared["sshPrivateKey"].get("secret") is True
    # Optional secrets cannot be `secret: true` (the CLI would require them, or refuse a plain default);
    # the program refuses them in plain text instead (test_config.py).
    for key in ("token", "keepalivedPassword"):
        assert declared[key]["default"] == "" and "secret" not in declared[key], key


def test_pulumi_yaml_defaults_match_the_program_defaults(mocks):
    """Mocks do not apply Pulumi.yaml defaults, so the program must default to the same values itself."""
    from components.config import SECRET_KEYS, parse_config

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    defaults = {k: v["default"] for k, v in project["config"].items() if "default" in v}
    base = {k: v for k, v in with_test_secrets(VALID).items() if k not in defaults or k in SECRET_KEYS}
    without = parse_config(base.get)
    with_defaults = parse_config({**defaults, **base}.get)
    for field in ("provider", "install_url", "ready_timeout_seconds", "tls_san"):
        assert getattr(without, field) == getattr(with_defaults, field), field
    assert without.distribution.name == with_defaults.distribution.name


def test_commands_are_the_only_custom_resources_in_hosts_mode():
    mocks = run_stack("onprem").mocks
    custom = {r.type for r in mocks.records if not r.type.startswith("kube-ha:index:")}
    assert custom == {COMMAND}


def test_an_upgrade_runs_the_final_check_again():
    """The check's node list does not change on an upgrade; its trigger over every node command does."""
    before = run_stack("onprem").mocks.named("cluster-nodes-ready")
    after = run_stack("onprem", {"version": "v1.34.1+rke2r1"}).mocks.named("cluster-nodes-ready")
    assert before.plain("create") == after.plain("create")
    assert unwrap(before.inputs["triggers"]) != unwrap(after.inputs["triggers"])
