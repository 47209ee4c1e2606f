"""Each component on its own under Pulumi mocks, and the pure functions they render with."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pulumi
import pytest
import yaml

from components.agent_pool import AgentPool, AgentPoolArgs
from components.cluster_check import ClusterCheck, ClusterCheckArgs, point_kubeconfig_at
from components.config import HostConfig, RegistrationConfig, SshConfig
from components.distribution import CONTROL_PLANE_TAINT, get_distribution
from components.load_balancer import (
    Backend,
    LoadBalancer,
    LoadBalancerArgs,
    render_haproxy_config,
    render_keepalived_config,
)
from components.nodes import NodeSoftware
from components.remote import NodeTarget, connection_args
from components.server_pool import ServerPool, ServerPoolArgs
from tests.harness import GENERATED_TOKEN, SERVER_KUBECONFIG, TEST_SSH_KEY, RecordingMocks, recording_dependencies

RKE2 = get_distribution("rke2")


def ssh() -> SshConfig:
    return SshConfig(user="root", port=22, private_key=pulumi.Output.secret(TEST_SSH_KEY))


def software() -> NodeSoftware:
    return NodeSoftware(RKE2, "v1.33.5+rke2r1", "https://get.rke2.io", 300, sudo=False)


def target(name: str, address: str) -> NodeTarget:
    return NodeTarget(name, connection_args(address, ssh()), address, node_name=name)


def run(build) -> RecordingMocks:
    """Runs `build()` under fresh mocks and waits for every registration; returns the mocks."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="kube-ha", stack="test", preview=False)
    captured = {}

    @pulumi.runtime.test
    def program():
        captured["result"] = build()
        return captured["result"]

    program()
    mocks.result = captured["result"]
    return mocks


def value_and_secret(output: pulumi.Output) -> tuple:
    """An output's value and whether it is secret, under the mocks already set."""
    seen = {}

    @pulumi.runtime.test
    def probe():
        async def go():
            seen["value"] = await output.future()
            seen["secret"] = await output.is_secret()

        return asyncio.ensure_future(go())

    probe()
    return seen["value"], seen["secret"]


class Endpoint:
    """A registration endpoint for the pools' tests, as the LoadBalancer or an NLB provides one."""

    def __init__(self, address: str, ready=()):
        self.address = pulumi.Output.from_input(address)
        self.registration_url = pulumi.Output.from_input(f"https://{address}:9345")
        self.api_url = pulumi.Output.from_input(f"https://{address}:6443")
        self.ready = list(ready)


# LoadBalancer


def test_address_mode_builds_nothing_and_outputs_urls():
    registration = RegistrationConfig(mode="address", address="k8s.example.com")

    def build():
        lb = LoadBalancer("lb", LoadBalancerArgs(registration, [Backend("s1", "10.0.0.21")], RKE2, ssh()))
        return pulumi.Output.all(lb.address, lb.registration_url, lb.api_url, pulumi.Output.from_input(len(lb.ready)))

    outputs = {}
    mocks = run(lambda: build().apply(lambda v: outputs.setdefault("v", v)))
    assert [r.type for r in mocks.records] == ["kube-ha:index:LoadBalancer"]
    assert outputs["v"] == ["k8s.example.com", "https://k8s.example.com:9345", "https://k8s.example.com:6443", 0]


def test_haproxy_keepalived_mode_configures_both_hosts_and_keeps_the_password_secret():
    registration = RegistrationConfig(
        mode="haproxy-keepalived",
        address="10.0.0.100",
        lb_hosts=(HostConfig("10.0.0.11"), HostConfig("10.0.0.12", internal_address="10.1.0.12")),
        interface="ens3",
        virtual_router_id=77,
    )
    backends = [Backend("s1", "10.0.0.21"), Backend("s2", "10.0.0.22"), Backend("s3", "10.0.0.23")]
    mocks = run(
        lambda: LoadBalancer(
            "lb", LoadBalancerArgs(registration, backends, RKE2, ssh(), pulumi.Output.secret("pw123456"))
        ).address
    )
    keepalived = mocks.named("lb-10-0-0-12-keepalived")
    assert keepalived.script_args == ["10.1.0.12", "ens3"]
    assert keepalived.inputs["stdin"]["value"].count("pw123456") == 1
    assert "pw123456" not in str({k: v for k, v in keepalived.inputs.items() if k != "stdin"})
    assert "virtual_router_id 77" in keepalived.plain("stdin")
    assert "unicast_peer {\n        10.0.0.11\n" in keepalived.plain("stdin")
    haproxy = mocks.named("lb-10-0-0-11-haproxy")
    assert haproxy.plain("connection")["host"] == "10.0.0.11"
    assert "server s3 10.0.0.23:6443 check" in haproxy.plain("stdin")


def test_haproxy_keepalived_without_password_is_refused():
    registration = RegistrationConfig(
        mode="haproxy-keepalived", address="10.0.0.100", lb_hosts=(HostConfig("10.0.0.11"), HostConfig("10.0.0.12"))
    )
    with pytest.raises(ValueError, match="keepalived_password"):
        run(lambda: LoadBalancer("lb", LoadBalancerArgs(registration, [], RKE2, ssh())).address)


def skip_unless_ci(tool: str) -> None:
    """Skips where the tool is missing, but fails in CI, which must install it."""
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is missing in CI: install it (tests/run.sh and the workflows do)")
    pytest.skip(f"{tool} is not installed (tests/run.sh installs it as root)")


def test_rendered_haproxy_config_passes_haproxy_check(tmp_path: Path):
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if haproxy is None:
        skip_unless_ci("haproxy")
    config = render_haproxy_config([Backend("s1", "10.0.0.21"), Backend("s2", "10.0.0.22")], 9345, 6443)
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    check = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    path.write_text(config.replace("balance roundrobin", "balance nonsense", 1))
    assert subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, timeout=30).returncode != 0


def test_rendered_keepalived_config_passes_keepalived_check(tmp_path: Path):
    keepalived = shutil.which("keepalived") or (
        "/usr/sbin/keepalived" if Path("/usr/sbin/keepalived").exists() else None
    )
    if keepalived is None:
        skip_unless_ci("keepalived")
    # keepalived refuses loopback for VRRP and checks that the interface exists.
    interfaces = sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo")
    if not interfaces:
        pytest.skip("no non-loopback interface to name in the config")
    config = render_keepalived_config(
        vip="10.0.0.100", source_ip="10.0.0.11", peer_ip="10.0.0.12", primary=True,
        virtual_router_id=51, password="pw", router_name="lb1",
    ).replace("@INTERFACE@", interfaces[0])
    path = tmp_path / "keepalived.conf"
    path.write_text(config)
    check = subprocess.run([keepalived, "-t", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    path.write_text(config.replace("vrrp_instance registration {", "vrrp_instance registration {\n    bogus_keyword 1"))
    assert subprocess.run([keepalived, "-t", "-f", str(path)], capture_output=True, timeout=30).returncode != 0


# ServerPool and AgentPool


def test_server_pool_token_read_back_is_secret_even_when_the_provider_returns_it_plain():
    def build():
        pool = ServerPool(
            "servers",
            ServerPoolArgs([target("s1", "10.0.0.21"), target("s2", "10.0.0.22")], software(), Endpoint("10.0.0.100")),
        )
        return pool.token

    mocks = run(build)
    assert value_and_secret(mocks.result) == (GENERATED_TOKEN, True)


def test_server_pool_props_carry_count_and_version_for_policies():
    mocks = run(
        lambda: ServerPool(
            "servers",
            ServerPoolArgs([target("s1", "10.0.0.21")], software(), Endpoint("10.0.0.100")),
        ).token
    )
    pool = mocks.named("servers")
    assert pool.inputs["serverCount"] == 1
    assert pool.inputs["version"] == "v1.33.5+rke2r1"


def test_single_server_pool_registers_the_bootstrap_and_token_reader_only():
    mocks = run(
        lambda: ServerPool(
            "servers", ServerPoolArgs([target("s1", "10.0.0.21")], software(), Endpoint("k8s.example.com"))
        ).token
    )
    assert sorted(r.name for r in mocks.commands()) == ["servers-s1", "servers-token"]
    config = yaml.safe_load(mocks.named("servers-s1").plain("stdin"))
    assert config == {"tls-san": ["k8s.example.com"], "node-name": "s1"}


def test_empty_server_pool_is_refused():
    with pytest.raises(ValueError, match="at least one server"):
        run(lambda: ServerPool("servers", ServerPoolArgs([], software(), Endpoint("10.0.0.100"))).token)


def test_agent_pool_waits_only_for_bootstrap_and_load_balancer():
    def build():
        endpoint = Endpoint("10.0.0.100")
        pool = ServerPool(
            "servers",
            ServerPoolArgs([target(f"s{i}", f"10.0.0.2{i}") for i in (1, 2, 3)], software(), endpoint),
        )
        agents = AgentPool(
            "agents",
            AgentPoolArgs([target("a1", "10.0.0.31")], software(), endpoint, pool.token, pool.bootstrap),
        )
        return pulumi.Output.all(*agents.node_names)

    with recording_dependencies() as dependencies:
        mocks = run(build)
    assert dependencies["agents-a1"] >= {"servers-s1", "servers-token"}
    assert not dependencies["agents-a1"] & {"servers-s2", "servers-s3"}, "agents do not wait for server joins"
    assert dependencies["servers-s3"] >= {"servers-s2"}, "joins are serial"
    agent = mocks.named("agents-a1")
    assert agent.script_args[0] == "agent"
    assert yaml.safe_load(agent.plain("stdin"))["server"] == "https://10.0.0.100:9345"


def test_empty_agent_pool_registers_no_command():
    mocks = run(
        lambda: AgentPool(
            "agents", AgentPoolArgs([], software(), Endpoint("10.0.0.100"), pulumi.Output.secret("t" * 20), [])
        ).node_names
    )
    assert mocks.commands() == []


def test_cluster_check_kubeconfig_points_at_the_api_url_and_is_secret():
    def build():
        check = ClusterCheck(
            "cluster",
            ClusterCheckArgs(target("s1", "10.0.0.21"), software(), ["s1"], "https://10.0.0.100:6443", []),
        )
        return check.kubeconfig

    mocks = run(build)
    kubeconfig, secret = value_and_secret(mocks.result)
    assert secret is True
    assert yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"] == "https://10.0.0.100:6443"


# Pure functions


def test_point_kubeconfig_at_rewrites_every_cluster():
    doc = yaml.safe_load(SERVER_KUBECONFIG)
    doc["clusters"].append({"name": "second", "cluster": {"server": "https://127.0.0.1:6443"}})
    rewritten = yaml.safe_load(point_kubeconfig_at(yaml.safe_dump(doc), "https://vip:6443"))
    assert [c["cluster"]["server"] for c in rewritten["clusters"]] == ["https://vip:6443"] * 2
    assert rewritten["users"] == doc["users"]


@pytest.mark.parametrize("garbage", ["", "just text", "clusters: []"])
def test_point_kubeconfig_at_rejects_a_kubeconfig_without_clusters(garbage):
    with pytest.raises(ValueError, match="no clusters"):
        point_kubeconfig_at(garbage, "https://vip:6443")


def test_rke2_taint_merges_with_user_taints_without_duplicates():
    config = RKE2.node_config(
        role="server", token=None, server_url=None, tls_san=["vip"], node_name=None, node_ip=None, taint=True,
        extra={"node-taint": ["dedicated=infra:NoSchedule", CONTROL_PLANE_TAINT], "write-kubeconfig-mode": "0600"},
    )
    assert config["node-taint"] == ["dedicated=infra:NoSchedule", CONTROL_PLANE_TAINT]
    assert config["write-kubeconfig-mode"] == "0600"


def test_rke2_agent_config_has_no_server_only_keys():
    config = RKE2.node_config(
        role="agent", token="t" * 20, server_url="https://vip:9345", tls_san=["vip"], node_name="a1",
        node_ip="10.0.0.31", taint=False, extra={},
    )
    assert config == {"server": "https://vip:9345", "token": "t" * 20, "node-name": "a1", "node-ip": "10.0.0.31"}


def test_ipv6_registration_address_is_bracketed_in_urls():
    registration = RegistrationConfig(mode="address", address="fd00::10")
    seen = {}

    def build():
        lb = LoadBalancer("lb", LoadBalancerArgs(registration, [], RKE2, ssh()))
        return pulumi.Output.all(lb.address, lb.registration_url, lb.api_url).apply(lambda v: seen.setdefault("v", v))

    run(build)
    assert seen["v"] == ["fd00::10", "https://[fd00::10]:9345", "https://[fd00::10]:6443"]


def test_point_kubeconfig_at_never_quotes_a_broken_kubeconfig():
    broken = "clusters:\n- cluster: {server: x\n  client-key-data: SECRETKEYMATERIAL\n"
    with pytest.raises(ValueError) as caught:
        point_kubeconfig_at(broken, "https://vip:6443")
    assert "SECRETKEYMATERIAL" not in str(caught.value)
    assert "not valid YAML" in str(caught.value)
