"""Provider aws: the network load balancer as the registration address, and how its name reaches the
servers' certificates and every join."""

from __future__ import annotations

import yaml

from tests.aws_mocks import (
    ATTACHMENT, INSTANCE, LISTENER, NLB, RECORD, TARGET_GROUP, aws_config, run_aws,
    shared_default, shared_stack,
)
from tests.harness import recording_dependencies, unwrap


def node_configs(result) -> dict[str, dict]:
    """The node config each install command sends, by command name."""
    return {c.name: yaml.safe_load(unwrap(c.inputs["stdin"])) for c in result.mocks.commands("rke2-node.sh")}


def nlb_dns(result) -> str:
    (lb,) = result.mocks.of_type(NLB)
    return lb.outputs["dnsName"]


def test_one_network_load_balancer_across_zones_with_its_own_security_group():
    result = shared_default()
    (lb,) = result.mocks.of_type(NLB)
    assert lb.inputs["loadBalancerType"] == "network"
    assert lb.inputs["enableCrossZoneLoadBalancing"] is True
    assert lb.inputs["internal"] is False
    assert lb.inputs["securityGroups"] == ["aws-nlb-sg-id"]
    assert lb.inputs["subnets"] == [f"aws-network-public-us-east-1{z}-id" for z in "abc"]


def test_internal_nlb_sits_in_the_private_subnets():
    (lb,) = shared_stack("prod").mocks.of_type(NLB)
    assert lb.inputs["internal"] is True
    assert lb.inputs["subnets"] == [f"aws-network-private-eu-west-1{z}-id" for z in "abc"]


def test_internal_nlb_without_private_subnets_uses_the_public_ones():
    config = aws_config(registration={"mode": "nlb", "internal": True})
    config["aws"]["vpc"].pop("privateSubnetCidrs")
    (lb,) = run_aws(config).mocks.of_type(NLB)
    assert lb.inputs["subnets"] == [f"aws-network-public-us-east-1{z}-id" for z in "abc"]


def test_two_tcp_target_groups_with_tcp_health_checks_and_no_client_ip_preservation():
    groups = {int(g.inputs["port"]): g.inputs for g in shared_default().mocks.of_type(TARGET_GROUP)}
    assert set(groups) == {9345, 6443}
    for group in groups.values():
        assert group["protocol"] == "TCP"
        assert group["targetType"] == "instance"
        assert group["preserveClientIp"] == "false"
        assert group["vpcId"] == "aws-network-vpc-id"
        check = group["healthCheck"]
        assert check["enabled"] is True and check["protocol"] == "TCP" and check["port"] == "traffic-port"


def test_both_listeners_forward_to_their_target_group():
    result = shared_default()
    arns = {int(g.inputs["port"]): g.outputs["arn"] for g in result.mocks.of_type(TARGET_GROUP)}
    (lb,) = result.mocks.of_type(NLB)
    listeners = {int(l.inputs["port"]): l.inputs for l in result.mocks.of_type(LISTENER)}
    assert set(listeners) == {9345, 6443}
    for port, listener in listeners.items():
        assert listener["protocol"] == "TCP"
        assert listener["loadBalancerArn"] == lb.outputs["arn"]
        assert listener["defaultActions"] == [{"type": "forward", "targetGroupArn": arns[port]}]


def test_every_server_and_no_agent_is_attached_on_both_ports():
    result = shared_default()
    arns = {g.outputs["arn"]: int(g.inputs["port"]) for g in result.mocks.of_type(TARGET_GROUP)}
    attached = {(arns[a.inputs["targetGroupArn"]], a.inputs["targetId"], int(a.inputs["port"]))
                for a in result.mocks.of_type(ATTACHMENT)}
    servers = [f"aws-servers-{i}-id" for i in (1, 2, 3)]
    assert attached == {(port, server, port) for port in (9345, 6443) for server in servers}


def test_the_nlb_name_reaches_every_servers_tls_san_and_every_joins_server_url():
    result = shared_default()
    dns = nlb_dns(result)
    configs = node_configs(result)
    assert set(configs) == {"servers-server-1", "servers-server-2", "servers-server-3",
                            "agents-agent-1", "agents-agent-2"}
    for name, config in configs.items():
        if name.startswith("servers-"):
            assert dns in config["tls-san"]
        if name != "servers-server-1":
            assert config["server"] == f"https://{dns}:9345"
    assert "server" not in configs["servers-server-1"]
    assert result.exports["registrationAddress"] == dns
    assert result.exports["nlbDnsName"] == dns
    assert result.exports["apiUrl"] == f"https://{dns}:6443"


def test_a_custom_dns_name_gets_a_route53_alias_a_certificate_name_and_the_kubeconfig():
    result = shared_stack("staging")
    dns = nlb_dns(result)
    (record,) = result.mocks.of_type(RECORD)
    assert record.inputs["zoneId"] == "Z0123456789STAGING"
    assert record.inputs["name"] == "k8s.staging.example.com"
    assert record.inputs["type"] == "A"
    assert record.inputs["aliases"] == [{"name": dns, "zoneId": "Z26RNL4JYFTOTI", "evaluateTargetHealth": True}]
    for name, config in node_configs(result).items():
        assert config["tls-san"][:2] == [dns, "k8s.staging.example.com"]
    assert result.exports["apiUrl"] == "https://k8s.staging.example.com:6443"
    kubeconfig = yaml.safe_load(result.exports["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://k8s.staging.example.com:6443"
    # Joins still go to the NLB itself: they must not wait for DNS to propagate.
    assert node_configs(result)["servers-server-2"]["server"] == f"https://{dns}:9345"


def test_a_dns_name_without_a_zone_creates_no_record():
    result = run_aws(aws_config(registration={"mode": "nlb", "dnsName": "k8s.example.com"}))
    assert result.mocks.of_type(RECORD) == []
    assert "k8s.example.com" in node_configs(result)["servers-server-1"]["tls-san"]


def test_joins_wait_for_every_listener_attachment_and_rule_of_the_nlb():
    with recording_dependencies() as deps:
        result = run_aws(aws_config())
    nlb_parts = {r.name for r in result.mocks.records
                 if r.type in (LISTENER, ATTACHMENT) or r.name.startswith("aws-nlb-") and "tcp" in r.name}
    # 2 listeners, 6 attachments, 10 node-address rules, 1 admin rule, 2 egress, 2 servers-from-NLB.
    assert len(nlb_parts) == 2 + 6 + 10 + 1 + 2 + 2
    for join in ("servers-server-2", "servers-server-3", "agents-agent-1", "agents-agent-2"):
        missing = nlb_parts - deps[join]
        assert not missing, f"{join} does not wait for {sorted(missing)}"


def test_address_mode_uses_the_users_address_and_builds_no_nlb():
    result = run_aws(aws_config(registration={"mode": "address", "address": "k8s.example.com"}))
    assert result.mocks.of_type(NLB) == [] and result.mocks.of_type(TARGET_GROUP) == []
    assert "nlbDnsName" not in result.exports
    assert [r.name for r in result.mocks.of_type("kube-ha:index:LoadBalancer")] == ["aws-registration"]
    configs = node_configs(result)
    assert configs["agents-agent-1"]["server"] == "https://k8s.example.com:9345"
    assert configs["servers-server-1"]["tls-san"] == ["k8s.example.com"]
    assert len(result.mocks.of_type(INSTANCE)) == 5
