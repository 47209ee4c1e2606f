"""Provider aws: every security-group rule, and that none is wider than RKE2 needs."""

from __future__ import annotations

import ipaddress

import pytest

from tests.aws_mocks import EGRESS, INGRESS, INSTANCE, SECURITY_GROUP, aws_config, run_aws, shared_default, shared_stack

SERVERS, AGENTS, NLB, BASTION = (
    "aws-security-servers-id", "aws-security-agents-id", "aws-nlb-sg-id", "aws-security-bastion-id")
ADMIN = "203.0.113.0/24"


def rules(result, typ=INGRESS) -> set[tuple]:
    """(group, protocol, from, to, source-or-destination) of every rule of type `typ`."""
    found = set()
    for record in result.mocks.of_type(typ):
        i = record.inputs
        ports = (int(i["fromPort"]), int(i["toPort"])) if "fromPort" in i else (None, None)
        peer = i.get("referencedSecurityGroupId") or i.get("cidrIpv4")
        found.add((i["securityGroupId"], i["ipProtocol"], *ports, peer))
    return found


def public_ips(result) -> dict[str, str]:
    return {r.name: r.outputs["publicIp"] for r in result.mocks.of_type(INSTANCE)}


def test_every_rule_of_the_default_cluster():
    """Three servers, two agents, public SSH, internet-facing NLB, Canal."""
    result = shared_default()
    nodes = (SERVERS, AGENTS)
    expected = set()
    for port in (9345, 6443):
        expected |= {(SERVERS, "tcp", port, port, source) for source in (*nodes, NLB)}
    expected.add((SERVERS, "tcp", 2379, 2380, SERVERS))
    for group in nodes:
        expected |= {(group, "tcp", 10250, 10250, source) for source in nodes}
        expected |= {(group, "udp", 8472, 8472, source) for source in nodes}
        expected |= {(group, "tcp", 9099, 9099, source) for source in nodes}
        expected.add((group, "tcp", 22, 22, ADMIN))
    # The NLB's own clients: the admins for the API, and each node by its public address.
    expected.add((NLB, "tcp", 6443, 6443, ADMIN))
    for ip in public_ips(result).values():
        expected |= {(NLB, "tcp", port, port, f"{ip}/32") for port in (9345, 6443)}
    assert rules(result) == expected

    assert rules(result, EGRESS) == {
        (SERVERS, "-1", None, None, "0.0.0.0/0"),
        (AGENTS, "-1", None, None, "0.0.0.0/0"),
        # Health checks obey the NLB's outbound rules: only the servers' two ports.
        (NLB, "tcp", 9345, 9345, SERVERS),
        (NLB, "tcp", 6443, 6443, SERVERS),
    }


def test_security_groups_carry_no_inline_rules():
    result = shared_default()
    for group in result.mocks.of_type(SECURITY_GROUP):
        assert "ingress" not in group.inputs and "egress" not in group.inputs, group.name


@pytest.mark.parametrize("source", ["config", "dev", "staging", "prod"])
def test_no_ingress_is_open_to_the_internet(source):
    result = shared_default() if source == "config" else shared_stack(source)
    for record in result.mocks.of_type(INGRESS):
        cidr = record.inputs.get("cidrIpv4")
        if cidr:
            assert ipaddress.ip_network(cidr).prefixlen > 0, f"{record.name} is open to {cidr}"


def test_ssh_api_and_supervisor_accept_only_known_sources():
    result = shared_default()
    known_groups = {SERVERS, AGENTS, NLB}
    node_addresses = {f"{ip}/32" for ip in public_ips(result).values()}
    for group, protocol, low, high, source in rules(result):
        if any(low <= port <= high for port in (22, 6443, 9345)):
            assert source in known_groups | node_addresses | {ADMIN}, (group, low, source)


def test_etcd_is_reachable_from_servers_only():
    result = shared_stack("prod")
    etcd = [r for r in rules(result) if r[2] is not None and r[2] <= 2380 and r[3] >= 2379]
    assert etcd == [(SERVERS, "tcp", 2379, 2380, SERVERS)]


def test_etcd_metrics_port_opens_between_servers_only_when_exposed():
    assert not [r for r in rules(shared_default()) if r[2] == 2381]
    config = aws_config(servers={"count": 3, "instanceType": "t3.large", "config": {"etcd-expose-metrics": True}})
    assert [r for r in rules(run_aws(config)) if r[2] == 2381] == [(SERVERS, "tcp", 2381, 2381, SERVERS)]


def test_agents_expose_neither_the_api_nor_the_supervisor_nor_etcd():
    for group, _, low, high, _ in rules(shared_stack("prod")):
        if group == AGENTS:
            assert not any(low <= port <= high for port in (2379, 2380, 6443, 9345))


def test_bastion_mode_reaches_nodes_through_the_bastion_only():
    result = shared_stack("prod")
    ssh = {r for r in rules(result) if r[2] == 22}
    assert ssh == {
        (SERVERS, "tcp", 22, 22, BASTION),
        (AGENTS, "tcp", 22, 22, BASTION),
        (BASTION, "tcp", 22, 22, "198.51.100.0/24"),
    }
    bastion_egress = {r for r in rules(result, EGRESS) if r[0] == BASTION}
    assert bastion_egress == {(BASTION, "tcp", 22, 22, SERVERS), (BASTION, "tcp", 22, 22, AGENTS)}


def test_internal_nlb_admits_nodes_by_security_group():
    result = shared_stack("prod")
    nlb_ingress = {r for r in rules(result) if r[0] == NLB}
    assert nlb_ingress == {
        (NLB, "tcp", 9345, 9345, SERVERS), (NLB, "tcp", 9345, 9345, AGENTS),
        (NLB, "tcp", 6443, 6443, SERVERS), (NLB, "tcp", 6443, 6443, AGENTS),
        (NLB, "tcp", 6443, 6443, "198.51.100.0/24"),
    }


def test_internet_facing_nlb_with_private_nodes_admits_the_nat_addresses():
    result = run_aws(aws_config(aws={"ssh": "bastion"}))
    nat_ips = {r.outputs["publicIp"] for r in result.mocks.of_type("aws:ec2/eip:Eip") if "nat" in r.name}
    assert len(nat_ips) == 3
    clients = {r[4] for r in rules(result) if r[0] == NLB and r[2] == 9345}
    assert clients == {f"{ip}/32" for ip in nat_ips}


def test_ssh_rules_follow_the_configured_port():
    result = run_aws(aws_config(ssh={"user": "ubuntu", "port": 2222}))
    assert {r[2] for r in rules(result) if r[4] == ADMIN and r[0] != NLB} == {2222}


@pytest.mark.parametrize("cni,expected", [
    ("cilium", {("icmp", 8, 0), ("tcp", 4240, 4240), ("udp", 8472, 8472)}),
    ("calico", {("tcp", 179, 179), ("udp", 4789, 4789), ("tcp", 5473, 5473), ("tcp", 9098, 9098), ("tcp", 9099, 9099)}),
    ("multus,canal", {("udp", 8472, 8472), ("tcp", 9099, 9099)}),
    ("flannel", {("udp", 4789, 4789)}),
])
def test_cni_ports_follow_the_chosen_cni(cni, expected):
    config = aws_config(servers={"count": 3, "instanceType": "t3.large", "config": {"cni": cni}})
    result = run_aws(config)
    base = {("tcp", 9345, 9345), ("tcp", 6443, 6443), ("tcp", 2379, 2380), ("tcp", 10250, 10250), ("tcp", 22, 22)}
    between_nodes = {(p, low, high) for group, p, low, high, source in rules(result) if source == AGENTS}
    assert between_nodes - base == expected
    for group in (SERVERS, AGENTS):
        for protocol, low, high in expected:
            assert (group, protocol, low, high, SERVERS) in rules(result)


def test_node_ports_are_closed_unless_asked():
    assert not [r for r in rules(shared_default()) if r[2] == 30000]
    result = run_aws(aws_config(aws={"nodePorts": True, "nodePortCidrs": ["198.51.100.0/24"]}))
    node_ports = {r for r in rules(result) if r[2] == 30000}
    expected = {(group, protocol, 30000, 32767, source)
                for group in (SERVERS, AGENTS) for protocol in ("tcp", "udp")
                for source in (SERVERS, AGENTS, "198.51.100.0/24")}
    assert node_ports == expected


def test_address_mode_admits_admins_to_the_api_on_the_servers():
    result = run_aws(aws_config(registration={"mode": "address", "address": "k8s.example.com"}))
    assert (SERVERS, "tcp", 6443, 6443, ADMIN) in rules(result)
    assert not [r for r in rules(result) if r[4] == NLB or r[0] == NLB]


def test_rule_names_follow_cidrs_not_list_positions():
    first = run_aws(aws_config(aws={"adminCidrs": ["203.0.113.0/24", "198.51.100.0/24"]}))
    second = run_aws(aws_config(aws={"adminCidrs": ["198.51.100.0/24", "203.0.113.0/24"]}))
    names = lambda result: {r.name: r.inputs.get("cidrIpv4") for r in result.mocks.of_type(INGRESS)}  # noqa: E731
    assert names(first) == names(second)
