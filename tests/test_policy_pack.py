"""Checks the wiring in policy/__main__.py against the real pulumi_policy SDK.

Runs where pulumi-policy is installed (the policy venv made by .ci/policy.sh); skipped in the
program's venv, which must not carry pulumi-policy's protobuf pin. The servicer tests feed the
SDK's gRPC handler the same messages the engine sends, so they exercise the path a real
``pulumi preview --policy-pack policy`` takes, minus the engine.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

import pytest

pulumi_policy = pytest.importorskip("pulumi_policy")

from google.protobuf import struct_pb2  # noqa: E402  (after the importorskip on purpose)
from pulumi.runtime.proto import analyzer_pb2  # noqa: E402
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy  # noqa: E402
from pulumi_policy import deserialize as sdk_deserialize  # noqa: E402
from pulumi_policy import policy as sdk_policy  # noqa: E402
from pulumi_policy import proxy as sdk_proxy  # noqa: E402

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"

EXPECTED = {
    "odd-server-count": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "pinned-version": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "no-world-open-admin-ports": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "imdsv2-required": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "root-volume-encrypted": (ResourceValidationPolicy, EnforcementLevel.MANDATORY),
    "nlb-cross-zone": (ResourceValidationPolicy, EnforcementLevel.ADVISORY),
    "secret-outputs": (StackValidationPolicy, EnforcementLevel.MANDATORY),
}


def _load_pack():
    name = "kube_ha_policy_pack"
    if name in sys.modules:
        return sys.modules[name]
    # Pulumi's runner puts the pack directory on sys.path; do the same so `import rules` resolves.
    if str(POLICY_DIR) not in sys.path:
        sys.path.insert(0, str(POLICY_DIR))
    spec = importlib.util.spec_from_file_location(name, POLICY_DIR / "__main__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pack = _load_pack()


def test_every_rule_is_registered_with_its_enforcement_level():
    registered = {policy.name: policy for policy in pack.POLICIES}
    assert set(registered) == set(EXPECTED)
    for name, (kind, level) in EXPECTED.items():
        assert isinstance(registered[name], kind), name
        assert registered[name].enforcement_level is level, name


def test_policies_follow_the_rule_table():
    assert [policy.name for policy in pack.POLICIES] == [rule.name for rule in pack.rules.RULES]
    assert set(pack.ENFORCEMENT) == {rule.name for rule in pack.rules.RULES}
    descriptions = {rule.name: rule.description for rule in pack.rules.RULES}
    assert all(policy.description == descriptions[policy.name] for policy in pack.POLICIES)


def test_policy_pack_project_file_declares_a_python_pack_with_its_own_venv():
    import yaml

    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    assert project["version"]


def test_running_the_pack_as_pulumi_does_serves_every_policy(monkeypatch):
    served = {}

    def fake_policy_pack(**kwargs):
        served.update(kwargs)

    # Constructing the real PolicyPack starts a gRPC server that never returns.
    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_policy_pack)
    runpy.run_path(str(POLICY_DIR), run_name="__main__")
    assert served["name"] == "kube-ha"
    assert sorted(policy.name for policy in served["policies"]) == sorted(EXPECTED)


# --- the SDK's gRPC handler, fed engine-shaped requests -------------------------------------------

SIG = sdk_deserialize.SPECIAL_SIG_KEY


def secret(value):
    return {SIG: sdk_deserialize.SPECIAL_SECRET_SIG, "value": value}


def _struct(props):
    message = struct_pb2.Struct()
    message.update(props)
    return message


def _servicer():
    return sdk_policy._PolicyAnalyzerServicer(pack.PACK_NAME, "0.1.0", pack.POLICIES, EnforcementLevel.MANDATORY)


def _urn(resource_type, name):
    return f"urn:pulumi:dev::kube-ha::{resource_type}::{name}"


def analyze(resource_type, name, props):
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type, name=name, urn=_urn(resource_type, name), properties=_struct(props))
    return list(_servicer().Analyze(request, None).diagnostics)


def analyze_stack(*resources):
    request = analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(type=t, name=n, urn=_urn(t, n), properties=_struct(p))
        for t, n, p in resources
    ])
    return list(_servicer().AnalyzeStack(request, None).diagnostics)


def by_policy(diagnostics):
    return {d.policyName: d for d in diagnostics}


MANDATORY = analyzer_pb2.MANDATORY
ADVISORY = analyzer_pb2.ADVISORY


def test_insecure_instance_is_reported_as_mandatory():
    found = by_policy(analyze("aws:ec2/instance:Instance", "server-1", {"instanceType": "t3.large"}))
    assert set(found) == {"imdsv2-required", "root-volume-encrypted"}
    assert all(d.enforcementLevel == MANDATORY for d in found.values())
    assert '"server-1"' in found["imdsv2-required"].message


def test_hardened_instance_passes_even_with_secret_inputs():
    props = {"metadataOptions": {"httpTokens": "required"},
             "rootBlockDevice": secret({"encrypted": True}), "userData": secret("#!/bin/sh")}
    assert analyze("aws:ec2/instance:Instance", "server-1", props) == []


def test_unknown_values_during_preview_neither_fail_nor_warn():
    props = {"metadataOptions": sdk_proxy.UNKNOWN_OBJECT_VALUE,
             "rootBlockDevice": {"encrypted": sdk_proxy.UNKNOWN_BOOLEAN_VALUE}}
    assert analyze("aws:ec2/instance:Instance", "server-1", props) == []
    assert analyze("kube-ha:index:ServerPool", "servers",
                   {"serverCount": sdk_proxy.UNKNOWN_NUMBER_VALUE, "version": sdk_proxy.UNKNOWN_STRING_VALUE}) == []


def test_server_pool_rules_read_component_props():
    found = by_policy(analyze("kube-ha:index:ServerPool", "servers", {"serverCount": 2, "version": "latest"}))
    assert set(found) == {"odd-server-count", "pinned-version"}
    assert analyze("kube-ha:index:ServerPool", "servers", {"serverCount": 3, "version": "v1.33.5+rke2r1"}) == []


def test_world_open_supervisor_port_is_reported():
    props = {"ipProtocol": "tcp", "fromPort": 9345, "toPort": 9345, "cidrIpv4": "0.0.0.0/0"}
    [diagnostic] = analyze("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "supervisor", props)
    assert diagnostic.policyName == "no-world-open-admin-ports"
    assert "9345" in diagnostic.message


def test_single_zone_nlb_is_advisory():
    props = {"loadBalancerType": "network", "enableCrossZoneLoadBalancing": False}
    [diagnostic] = analyze("aws:lb/loadBalancer:LoadBalancer", "api", props)
    assert diagnostic.policyName == "nlb-cross-zone"
    assert diagnostic.enforcementLevel == ADVISORY


def test_secret_stack_outputs_pass():
    outputs = {"kubeconfig": secret("apiVersion: v1"), "apiUrl": "https://10.0.0.5:6443",
               "servers": [{"name": "server-1"}]}
    assert analyze_stack(("pulumi:pulumi:Stack", "kube-ha-dev", outputs)) == []


def test_secret_but_unknown_stack_output_passes_during_preview():
    outputs = {"kubeconfig": secret(sdk_proxy.UNKNOWN_STRING_VALUE)}
    assert analyze_stack(("pulumi:pulumi:Stack", "kube-ha-dev", outputs)) == []


def test_plain_kubeconfig_output_is_reported_against_the_stack():
    outputs = {"kubeconfig": "apiVersion: v1", "apiUrl": "https://10.0.0.5:6443"}
    [diagnostic] = analyze_stack(("pulumi:pulumi:Stack", "kube-ha-dev", outputs))
    assert diagnostic.policyName == "secret-outputs"
    assert diagnostic.urn == _urn("pulumi:pulumi:Stack", "kube-ha-dev")
    assert diagnostic.enforcementLevel == MANDATORY


def test_component_outputs_are_checked_too():
    [diagnostic] = analyze_stack(
        ("pulumi:pulumi:Stack", "kube-ha-dev", {"kubeconfig": secret("k")}),
        ("kube-ha:index:ServerPool", "servers", {"serverCount": 3, "nodeToken": "K10plain"}),
    )
    assert diagnostic.urn == _urn("kube-ha:index:ServerPool", "servers")


def test_remediation_path_is_left_to_the_sdk():
    # Remediation deserializes into the SDK's secrets-preserving proxy: values read plain, stay secret.
    remediated = pack.deserialize_keeping_secrets({"a": secret("x")}, True)
    assert remediated["a"] == "x"
    assert isinstance(remediated["__target"]["a"], pulumi_policy.Secret)
