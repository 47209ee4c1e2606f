"""Unit tests for policy/rules.py: pure functions, so they run without pulumi_policy installed."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

RULES_PATH = Path(__file__).resolve().parent.parent / "policy" / "rules.py"


def _load_rules():
    # A distinct module name: "rules" is generic enough to collide with something on sys.path.
    name = "kube_ha_policy_rules"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, RULES_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


rules = _load_rules()
UNKNOWN = rules.UNKNOWN
Secret = rules.Secret

SG = rules.SG
SG_RULE = rules.SG_RULE
SG_INGRESS = rules.SG_INGRESS_RULE
INSTANCE = rules.INSTANCE
NLB = "aws:lb/loadBalancer:LoadBalancer"
POOL = rules.SERVER_POOL
STACK = rules.STACK


def test_rules_module_imports_only_the_standard_library():
    tree = ast.parse(RULES_PATH.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


# --- odd-server-count -------------------------------------------------------------------------

@pytest.mark.parametrize("count", [1, 3, 5, 3.0])
def test_odd_server_count_passes(count):
    assert rules.odd_server_count(POOL, "servers", {"serverCount": count}) == []


@pytest.mark.parametrize("count", [0, 2, 4, 4.0])
def test_even_or_zero_server_count_is_a_violation(count):
    [message] = rules.odd_server_count(POOL, "servers", {"serverCount": count})
    assert f'{POOL} "servers"' in message
    assert f"runs {int(count)} server" in message
    assert "kube-ha:servers" in message


@pytest.mark.parametrize("props", [{}, {"serverCount": UNKNOWN}, {"serverCount": None}])
def test_server_count_absent_or_unknown_is_skipped(props):
    assert rules.odd_server_count(POOL, "servers", props) == []


def test_server_count_not_a_number_is_reported():
    [message] = rules.odd_server_count(POOL, "servers", {"serverCount": "three"})
    assert "non-integer" in message


# --- pinned-version -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["v1.33.5+rke2r1", "v1.30.14+rke2r2", "v1.34.1-rc1+rke2r1"])
def test_exact_release_passes(version):
    assert rules.pinned_version(POOL, "servers", {"version": version}) == []


@pytest.mark.parametrize("version", ["latest", "LATEST", " stable ", "testing"])
def test_channel_is_a_violation(version):
    [message] = rules.pinned_version(POOL, "servers", {"version": version})
    assert f'{POOL} "servers"' in message
    assert "moving channel" in message
    assert "kube-ha:version" in message and "v1.33.5+rke2r1" in message


@pytest.mark.parametrize("version", ["v1.33", "1.33.5", "v1.33.5", "", "   ", 133])
def test_unpinned_or_malformed_version_is_a_violation(version):
    [message] = rules.pinned_version(POOL, "servers", {"version": version})
    assert "kube-ha:version" in message


@pytest.mark.parametrize("props", [{}, {"version": UNKNOWN}, {"version": None}])
def test_version_absent_or_unknown_is_skipped(props):
    assert rules.pinned_version(POOL, "servers", props) == []


def test_secret_version_is_looked_through():
    assert rules.pinned_version(POOL, "servers", {"version": Secret("latest")})


# --- no-world-open-admin-ports -----------------------------------------------------------------

def _ingress_rule(**props):
    base = {"ipProtocol": "tcp", "fromPort": 6443, "toPort": 6443, "cidrIpv4": "10.0.0.0/16"}
    base.update(props)
    return base


@pytest.mark.parametrize("port", [22, 6443, 9345])
@pytest.mark.parametrize("cidr_key,cidr", [("cidrIpv4", "0.0.0.0/0"), ("cidrIpv6", "::/0")])
def test_vpc_ingress_rule_open_to_world_is_a_violation(port, cidr_key, cidr):
    props = _ingress_rule(fromPort=port, toPort=port, **{"cidrIpv4": None, cidr_key: cidr})
    [message] = rules.no_world_open_admin_ports(SG_INGRESS, "api", props)
    assert f'{SG_INGRESS} "api"' in message
    assert str(port) in message and cidr in message
    assert "referencedSecurityGroupId" in message


def test_vpc_ingress_rule_port_range_covering_admin_ports():
    props = _ingress_rule(fromPort=0, toPort=10000, cidrIpv4="0.0.0.0/0")
    [message] = rules.no_world_open_admin_ports(SG_INGRESS, "wide", props)
    assert "22 (SSH)" in message and "6443 (Kubernetes API)" in message and "9345 (RKE2 supervisor)" in message


def test_vpc_ingress_all_protocols_opens_every_port():
    props = {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"}
    [message] = rules.no_world_open_admin_ports(SG_INGRESS, "all", props)
    assert "22" in message and "6443" in message and "9345" in message


def test_numeric_tcp_protocol_and_float_ports():
    props = _ingress_rule(ipProtocol="6", fromPort=22.0, toPort=22.0, cidrIpv4="0.0.0.0/0")
    assert rules.no_world_open_admin_ports(SG_INGRESS, "ssh", props)


@pytest.mark.parametrize("props", [
    _ingress_rule(),                                                  # private source
    _ingress_rule(cidrIpv4="0.0.0.0/0", fromPort=443, toPort=443),    # public, but not an admin port
    _ingress_rule(cidrIpv4="0.0.0.0/0", ipProtocol="udp", fromPort=0, toPort=65535),
    _ingress_rule(cidrIpv4=None, referencedSecurityGroupId="sg-123"),
    _ingress_rule(cidrIpv4="0.0.0.0/1"),                              # half the internet is not "the world"
    _ingress_rule(cidrIpv4="not-a-cidr"),
])
def test_vpc_ingress_rule_allowed(props):
    assert rules.no_world_open_admin_ports(SG_INGRESS, "ok", props) == []


@pytest.mark.parametrize("props", [
    _ingress_rule(cidrIpv4=UNKNOWN),
    _ingress_rule(cidrIpv4="0.0.0.0/0", fromPort=UNKNOWN),
    _ingress_rule(cidrIpv4="0.0.0.0/0", ipProtocol=UNKNOWN),
])
def test_vpc_ingress_rule_unknown_during_preview_is_skipped(props):
    assert rules.no_world_open_admin_ports(SG_INGRESS, "later", props) == []


def test_security_group_rule_ingress_open_to_world():
    props = {"type": "ingress", "protocol": "tcp", "fromPort": 22, "toPort": 22,
             "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"], "ipv6CidrBlocks": ["::/0"]}
    [message] = rules.no_world_open_admin_ports(SG_RULE, "ssh", props)
    assert f'{SG_RULE} "ssh"' in message
    assert "0.0.0.0/0 and ::/0" in message


def test_security_group_rule_egress_is_ignored():
    props = {"type": "egress", "protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}
    assert rules.no_world_open_admin_ports(SG_RULE, "out", props) == []


def test_security_group_inline_ingress_reports_each_bad_entry():
    props = {"ingress": [
        {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
        {"protocol": "tcp", "fromPort": 9345, "toPort": 9345, "cidrBlocks": ["0.0.0.0/0"]},
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]},
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "securityGroups": ["sg-admin"]},
    ]}
    messages = rules.no_world_open_admin_ports(SG, "nodes", props)
    assert len(messages) == 2
    assert f'{SG} "nodes" ingress[1]' in messages[0] and "9345" in messages[0]
    assert f'{SG} "nodes" ingress[2]' in messages[1] and "::/0" in messages[1]


@pytest.mark.parametrize("props", [{}, {"ingress": UNKNOWN}, {"ingress": [UNKNOWN]}])
def test_security_group_without_known_ingress_is_skipped(props):
    assert rules.no_world_open_admin_ports(SG, "nodes", props) == []


def test_other_resource_types_are_ignored():
    assert rules.no_world_open_admin_ports(INSTANCE, "x", {"cidrIpv4": "0.0.0.0/0"}) == []


# --- imdsv2-required ---------------------------------------------------------------------------

def test_imdsv2_required_passes():
    props = {"metadataOptions": {"httpTokens": "required", "httpEndpoint": "enabled"}}
    assert rules.imdsv2_required(INSTANCE, "server-1", props) == []


def test_imds_disabled_passes():
    props = {"metadataOptions": {"httpTokens": "optional", "httpEndpoint": "disabled"}}
    assert rules.imdsv2_required(INSTANCE, "server-1", props) == []


@pytest.mark.parametrize("props", [
    {},
    {"metadataOptions": None},
    {"metadataOptions": {"httpTokens": "optional"}},
    {"metadataOptions": {"httpEndpoint": "enabled"}},
])
def test_imdsv1_reachable_is_a_violation(props):
    [message] = rules.imdsv2_required(INSTANCE, "server-1", props)
    assert f'{INSTANCE} "server-1"' in message
    assert 'httpTokens to "required"' in message


@pytest.mark.parametrize("props", [{"metadataOptions": UNKNOWN}, {"metadataOptions": {"httpTokens": UNKNOWN}}])
def test_imds_unknown_is_skipped(props):
    assert rules.imdsv2_required(INSTANCE, "server-1", props) == []


# --- root-volume-encrypted ---------------------------------------------------------------------

def test_encrypted_root_volume_passes():
    props = {"rootBlockDevice": {"encrypted": True, "volumeSize": 50}}
    assert rules.root_volume_encrypted(INSTANCE, "server-1", props) == []


@pytest.mark.parametrize("props", [
    {},
    {"rootBlockDevice": {"volumeSize": 50}},
    {"rootBlockDevice": {"encrypted": False}},
    {"rootBlockDevice": None},
])
def test_unencrypted_root_volume_is_a_violation(props):
    [message] = rules.root_volume_encrypted(INSTANCE, "agent-1", props)
    assert f'{INSTANCE} "agent-1"' in message
    assert "rootBlockDevice.encrypted to True" in message


@pytest.mark.parametrize("props", [{"rootBlockDevice": UNKNOWN}, {"rootBlockDevice": {"encrypted": UNKNOWN}}])
def test_root_volume_unknown_is_skipped(props):
    assert rules.root_volume_encrypted(INSTANCE, "agent-1", props) == []


# --- nlb-cross-zone ----------------------------------------------------------------------------

def test_nlb_with_cross_zone_passes():
    props = {"loadBalancerType": "network", "enableCrossZoneLoadBalancing": True}
    assert rules.nlb_cross_zone(NLB, "api", props) == []


@pytest.mark.parametrize("props", [
    {"loadBalancerType": "network"},
    {"loadBalancerType": "network", "enableCrossZoneLoadBalancing": False},
])
def test_nlb_without_cross_zone_is_a_violation(props):
    [message] = rules.nlb_cross_zone(NLB, "api", props)
    assert f'{NLB} "api"' in message
    assert "enableCrossZoneLoadBalancing to True" in message


@pytest.mark.parametrize("props", [
    {},                                                   # defaults to an application load balancer
    {"loadBalancerType": "application"},                  # always cross-zone
    {"loadBalancerType": UNKNOWN},
    {"loadBalancerType": "network", "enableCrossZoneLoadBalancing": UNKNOWN},
])
def test_non_nlb_or_unknown_is_skipped(props):
    assert rules.nlb_cross_zone(NLB, "api", props) == []


# --- secret-outputs ----------------------------------------------------------------------------

def test_secret_outputs_pass():
    outputs = {"kubeconfig": Secret("apiVersion: v1"), "registrationAddress": "10.0.0.5",
               "apiUrl": "https://10.0.0.5:6443", "servers": [{"name": "server-1"}]}
    assert rules.secret_outputs(STACK, "kube-ha-dev", outputs) == []


def test_secret_unknown_output_passes():
    assert rules.secret_outputs(STACK, "kube-ha-dev", {"kubeconfig": Secret(UNKNOWN)}) == []


@pytest.mark.parametrize("key", ["kubeconfig", "token", "nodeToken", "joinToken", "Kubeconfig"])
def test_plain_sensitive_output_is_a_violation(key):
    [message] = rules.secret_outputs(STACK, "kube-ha-dev", {key: "value", "apiUrl": "https://x:6443"})
    assert f'{STACK} "kube-ha-dev" output "{key}"' in message
    assert "pulumi.Output.secret" in message


def test_plain_unknown_sensitive_output_is_a_violation():
    # Secretness is known during preview even when the value is not.
    assert rules.secret_outputs(STACK, "kube-ha-dev", {"kubeconfig": UNKNOWN})


def test_nested_plain_token_is_found_and_secret_parents_cover_children():
    outputs = {"servers": [{"name": "s1", "nodeToken": "K10abc"}], "cluster": Secret({"token": "t"})}
    [message] = rules.secret_outputs(STACK, "kube-ha-dev", outputs)
    assert 'output "servers[0].nodeToken"' in message


def test_absent_sensitive_output_is_fine():
    assert rules.secret_outputs(STACK, "kube-ha-dev", {"kubeconfig": None, "apiUrl": "u"}) == []


# --- the rule table ----------------------------------------------------------------------------

def test_rule_table_covers_every_rule_once():
    names = [rule.name for rule in rules.RULES]
    assert names == ["odd-server-count", "pinned-version", "no-world-open-admin-ports",
                     "imdsv2-required", "root-volume-encrypted", "nlb-cross-zone", "secret-outputs"]
    assert all(rule.description and rule.resource_types for rule in rules.RULES)
    assert {rule.name for rule in rules.RULES if rule.stage == "stack"} == {"secret-outputs"}


@pytest.mark.parametrize("rule_name,resource_type,applies", [
    ("odd-server-count", POOL, True),
    ("odd-server-count", rules.AGENT_POOL, False),
    ("no-world-open-admin-ports", SG_RULE, True),
    ("nlb-cross-zone", "aws:alb/loadBalancer:LoadBalancer", True),
    ("secret-outputs", STACK, True),
    ("secret-outputs", "kube-ha:index:ClusterCheck", True),
    ("secret-outputs", "command:remote:Command", False),
])
def test_rule_applies_to(rule_name, resource_type, applies):
    rule = next(r for r in rules.RULES if r.name == rule_name)
    assert rule.applies_to(resource_type) is applies


def test_unknown_is_a_singleton():
    assert type(UNKNOWN)() is UNKNOWN
    assert repr(UNKNOWN) == "UNKNOWN"


# --- the program's own stacks comply --------------------------------------------------------------

STACK_FILES = sorted((RULES_PATH.parent.parent / "stacks").glob("Pulumi.*.yaml"))


def _as_rule_input(value, rpc):
    """Mock-recorded inputs (engine wire form) to the plain form the rules take."""
    if rpc.is_rpc_secret(value):
        return Secret(_as_rule_input(value["value"], rpc))
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict):
        return {key: _as_rule_input(child, rpc) for key, child in value.items()}
    if isinstance(value, list):
        return [_as_rule_input(child, rpc) for child in value]
    return value


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_program_stacks_pass_every_rule(stack_file, preview):
    # The harness runs the real program under Pulumi mocks; it needs the program's own venv.
    for module in ("pulumi_command", "pulumi_aws", "yaml"):
        pytest.importorskip(module, reason="needs the program's dependencies")
    harness = pytest.importorskip("tests.harness")
    from pulumi.runtime import rpc

    stack = stack_file.name[len("Pulumi."):-len(".yaml")]
    result = harness.run_stack(stack, preview=preview)
    violations = []
    for record in result.mocks.records:
        for rule in rules.RULES:
            if rule.stage == "resource" and rule.applies_to(record.type):
                violations += rule.check(record.type, record.name, _as_rule_input(record.inputs, rpc))
    outputs = {name: Secret(value) if name in result.secret_exports else value
               for name, value in result.exports.items()}
    violations += rules.secret_outputs(STACK, f"kube-ha-{stack}", outputs)
    assert violations == []
    assert any(r.type == POOL for r in result.mocks.records), "the server pool rules saw nothing"
