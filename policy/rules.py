"""kube-ha policy rules as pure functions over plain dicts.

Every check has the signature ``check(resource_type, name, props) -> list[str]`` and returns one
message per violation, each naming the resource and the fix. Nothing here imports pulumi_policy:
the rules are unit-tested in the program's own venv, and ``__main__.py`` adapts the SDK's proxies
into the plain values used here.

Two markers stand in for what plain dicts cannot express:
- ``UNKNOWN``: a value Pulumi cannot know during preview (computed by another resource). A rule
  that meets one skips that check instead of failing: the update re-runs the rules with real values.
- ``Secret``: a value Pulumi stores encrypted. Only the secret-outputs rule cares; the others look
  through it with ``reveal``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class _Unknown:
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Secret:
    value: Any


def reveal(value: Any) -> Any:
    while isinstance(value, Secret):
        value = value.value
    return value


def _get(props: Any, key: str) -> Any:
    props = reveal(props)
    return reveal(props.get(key)) if isinstance(props, Mapping) else None


def _describe(resource_type: str, name: str) -> str:
    return f'{resource_type} "{name}"'


Check = Callable[[str, str, Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    resource_types: frozenset[str]
    check: Check
    # "resource" rules see a resource's inputs before it is created; "stack" rules see every
    # resource's outputs once the whole program has run (stack outputs exist only there).
    stage: str = "resource"

    def applies_to(self, resource_type: str) -> bool:
        return any(
            resource_type.startswith(t[:-1]) if t.endswith("*") else resource_type == t
            for t in self.resource_types
        )


SERVER_POOL = "kube-ha:index:ServerPool"
AGENT_POOL = "kube-ha:index:AgentPool"
STACK = "pulumi:pulumi:Stack"
INSTANCE = "aws:ec2/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LB_TYPES = frozenset({"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"})


def _as_count(value: Any) -> int | None:
    # Numbers cross the policy gRPC boundary as floats, so 3.0 is a valid count of 3.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def odd_server_count(resource_type: str, name: str, props: Mapping[str, Any]) -> list[str]:
    raw = _get(props, "serverCount")
    if raw is None or raw is UNKNOWN:
        return []
    count = _as_count(raw)
    if count is None:
        return [f"{_describe(resource_type, name)} has a non-integer serverCount {raw!r}; "
                "list the servers in kube-ha:servers."]
    if count >= 1 and count % 2 == 1:
        return []
    return [f"{_describe(resource_type, name)} runs {count} server(s): etcd keeps quorum only with an "
            "odd number of servers (1, 3, 5 or 7; an even count tolerates no more failures than one "
            "fewer); set kube-ha:servers to an odd number of hosts."]


RELEASE_CHANNELS = frozenset({"latest", "stable", "testing"})
# The same releases the program accepts (components/rke2.py): exact, or an exact release candidate.
_PINNED_RKE2 = re.compile(r"^v\d+\.\d+\.\d+(?:-rc\d+)?\+rke2r\d+$")


def pinned_version(resource_type: str, name: str, props: Mapping[str, Any]) -> list[str]:
    version = _get(props, "version")
    if version is None or version is UNKNOWN:
        return []
    fix = "set kube-ha:version to an exact RKE2 release such as v1.33.5+rke2r1"
    if not isinstance(version, str) or not version.strip():
        return [f"{_describe(resource_type, name)} has no pinned version; {fix}."]
    if version.strip().lower() in RELEASE_CHANNELS:
        return [f'{_describe(resource_type, name)} installs the moving channel "{version}", so each '
                f"node can get a different release; {fix}."]
    if not _PINNED_RKE2.match(version.strip()):
        return [f'{_describe(resource_type, name)} version "{version}" is not an exact release '
                f"(a minor channel such as v1.33 floats); {fix}."]
    return []


ADMIN_PORTS = {22: "SSH", 6443: "Kubernetes API", 9345: "RKE2 supervisor"}
_ALL_PROTOCOLS = frozenset({"-1", "all"})
_TCP = frozenset({"tcp", "6"})


def _is_world(cidr: Any) -> bool:
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _exposed_admin_ports(protocol: Any, from_port: Any, to_port: Any) -> list[int] | None:
    """Admin ports a rule opens, or None when preview cannot tell yet."""
    if protocol is UNKNOWN:
        return None
    proto = str(protocol).strip().lower() if protocol is not None else ""
    if proto in _ALL_PROTOCOLS:
        # Protocol -1 ignores the port range and opens every port.
        return sorted(ADMIN_PORTS)
    if proto not in _TCP:
        return []
    if from_port is UNKNOWN or to_port is UNKNOWN:
        return None
    low = _as_count(from_port)
    high = _as_count(to_port)
    low = 0 if low is None else low
    high = 65535 if high is None else high
    return [p for p in sorted(ADMIN_PORTS) if low <= p <= high]


def _world_cidrs(*groups: Any) -> list[str]:
    found = []
    for group in groups:
        group = reveal(group)
        items = group if isinstance(group, Sequence) and not isinstance(group, str) else [group]
        found.extend(c for c in (reveal(i) for i in items) if _is_world(c))
    return found


def _ingress_violation(what: str, cidrs: list[str], ports: list[int] | None) -> list[str]:
    if not cidrs or not ports:
        return []
    opened = ", ".join(f"{p} ({ADMIN_PORTS[p]})" for p in ports)
    return [f"{what} opens {opened} to {' and '.join(cidrs)}; restrict the source to the admin or "
            "VPC CIDR, or reference a security group (referencedSecurityGroupId / "
            "sourceSecurityGroupId), instead of the whole internet."]


def no_world_open_admin_ports(resource_type: str, name: str, props: Mapping[str, Any]) -> list[str]:
    what = _describe(resource_type, name)
    if resource_type == SG_INGRESS_RULE:
        cidrs = _world_cidrs(_get(props, "cidrIpv4"), _get(props, "cidrIpv6"))
        ports = _exposed_admin_ports(_get(props, "ipProtocol"), _get(props, "fromPort"), _get(props, "toPort"))
        return _ingress_violation(what, cidrs, ports)
    if resource_type == SG_RULE:
        if _get(props, "type") != "ingress":
            return []
        cidrs = _world_cidrs(_get(props, "cidrBlocks"), _get(props, "ipv6CidrBlocks"))
        ports = _exposed_admin_ports(_get(props, "protocol"), _get(props, "fromPort"), _get(props, "toPort"))
        return _ingress_violation(what, cidrs, ports)
    if resource_type == SG:
        ingress = _get(props, "ingress")
        if not isinstance(ingress, Sequence) or isinstance(ingress, str):
            return []
        messages = []
        for index, rule in enumerate(ingress):
            cidrs = _world_cidrs(_get(rule, "cidrBlocks"), _get(rule, "ipv6CidrBlocks"))
            ports = _exposed_admin_ports(_get(rule, "protocol"), _get(rule, "fromPort"), _get(rule, "toPort"))
            messages += _ingress_violation(f"{what} ingress[{index}]", cidrs, ports)
        return messages
    return []


def imdsv2_required(resource_type: str, name: str, props: Mapping[str, Any]) -> list[str]:
    options = _get(props, "metadataOptions")
    if options is UNKNOWN:
        return []
    fix = 'set metadataOptions.httpTokens to "required"'
    if not isinstance(options, Mapping):
        return [f"{_describe(resource_type, name)} leaves metadataOptions unset, so IMDSv1 may stay "
                f"reachable (a server-side request forgery then leaks the node's role credentials); {fix}."]
    tokens, endpoint = _get(options, "httpTokens"), _get(options, "httpEndpoint")
    if tokens is UNKNOWN or endpoint is UNKNOWN or endpoint == "disabled" or tokens == "required":
        return []
    return [f'{_describe(resource_type, name)} allows IMDSv1 (httpTokens is {tokens or "unset"!r}); {fix}.']


def root_volume_encrypted(resource_type: str, name: str, props: Mapping[str, Any]) -> list[str]:
    device = _get(props, "rootBlockDevice")
    if device is UNKNOWN:
        return []
    encrypted = _get(device, "encrypted") if isinstance(device, Mapping) else None
    if encrypted is UNKNOWN or encrypted is True or encrypted == "true":
        return []
    # etcd on the root volume holds every Kubernetes Secret, so it must never rely on the
    # account's default-encryption setting, which the policy cannot see.
    return [f"{_describe(resource_type, name)} has an unencrypted root volume (etcd and Kubernetes "
            "Secrets live there); set rootBlockDevice.encrypted to True (optionally with kmsKeyId)."]


def nlb_cross_zone(resource_type: str, name: str, props: Mapping[str, Any]) -> list[str]:
    lb_type = _get(props, "loadBalancerType")
    if lb_type != "network":
        return []
    enabled = _get(props, "enableCrossZoneLoadBalancing")
    if enabled is UNKNOWN or enabled is True or enabled == "true":
        return []
    return [f"{_describe(resource_type, name)} is a network load balancer without cross-zone load "
            "balancing, so a zone whose servers are down still receives its share of API traffic; "
            "set enableCrossZoneLoadBalancing to True."]


_SENSITIVE_OUTPUT = re.compile(r"token|kubeconfig", re.IGNORECASE)


def _plain_sensitive_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, Secret):
        return []
    found = []
    if isinstance(value, Mapping):
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else str(key)
            if _SENSITIVE_OUTPUT.search(str(key)) and child is not None and not isinstance(child, Secret):
                found.append(child_path)
            else:
                found += _plain_sensitive_paths(child, child_path)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index, child in enumerate(value):
            found += _plain_sensitive_paths(child, f"{path}[{index}]")
    return found


def secret_outputs(resource_type: str, name: str, props: Mapping[str, Any]) -> list[str]:
    # Secretness is known even while the value itself is UNKNOWN, so unknowns are judged too.
    return [f'{_describe(resource_type, name)} output "{path}" is not secret, so it is stored and '
            "printed in plain text; export it wrapped in pulumi.Output.secret(...)."
            for path in _plain_sensitive_paths(props, "")]


RULES: tuple[Rule, ...] = (
    Rule("odd-server-count",
         "Server pools run an odd number of servers so etcd keeps quorum.",
         frozenset({SERVER_POOL}), odd_server_count),
    Rule("pinned-version",
         "The RKE2 version is an exact release, not a channel such as latest.",
         frozenset({SERVER_POOL, AGENT_POOL}), pinned_version),
    Rule("no-world-open-admin-ports",
         "No security group rule opens SSH (22), the API (6443) or the supervisor (9345) to 0.0.0.0/0 or ::/0.",
         frozenset({SG, SG_RULE, SG_INGRESS_RULE}), no_world_open_admin_ports),
    Rule("imdsv2-required",
         "EC2 instances require IMDSv2 session tokens.",
         frozenset({INSTANCE}), imdsv2_required),
    Rule("root-volume-encrypted",
         "EC2 instance root volumes are encrypted.",
         frozenset({INSTANCE}), root_volume_encrypted),
    Rule("nlb-cross-zone",
         "Network load balancers balance across zones.",
         LB_TYPES, nlb_cross_zone),
    Rule("secret-outputs",
         "Outputs named like a kubeconfig or a token are secrets.",
         frozenset({STACK, "kube-ha:*"}), secret_outputs, stage="stack"),
)
