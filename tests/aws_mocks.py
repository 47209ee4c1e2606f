"""Mocks that answer like pulumi-aws: the ids, addresses and names AWS computes, derived from resource
names so that two runs of the same config see the same values.

Also records each resource's dependencies (the URNs the engine would order it after), which Pulumi's
MockResourceArgs leaves out.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from typing import Any, Mapping, Optional

import pulumi

from tests.harness import ProgramResult, RecordingMocks, Record, run_program, stack_config, with_test_secrets

INSTANCE = "aws:ec2/instance:Instance"
NLB = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SUBNET = "aws:ec2/subnet:Subnet"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
KEY_PAIR = "aws:ec2/keyPair:KeyPair"
RECORD = "aws:route53/record:Record"
GET_AMI = "aws:ec2/getAmi:getAmi"
NLB_HOSTED_ZONE = "Z26RNL4JYFTOTI"

# A public key shaped like an OpenSSH ed25519 key: the program checks the framing only.
TEST_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKhA" + "b" * 40 + " kube-ha-test"


def _digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def _addresses(name: str) -> tuple[str, str]:
    """(private, public) IPs unique per resource name.

    The trailing number of a machine name (`aws-agents-17`) picks the last two octets, so up to 65535
    machines of one role never collide; the rest of the name picks the second octet.
    """
    match = re.search(r"(\d+)$", name)
    number = int(match.group(1)) if match else 0
    stem = name[: match.start()] if match else name
    group = 100 + _digest(stem)[0] % 100
    return f"10.{group}.{number // 256}.{number % 256}", f"54.{group}.{number // 256}.{number % 256}"


class AwsMocks(RecordingMocks):
    """RecordingMocks plus the outputs pulumi-aws computes, and a record of every invoke."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[pulumi.runtime.MockCallArgs] = []

    def resource_outputs(self, record: Record) -> dict:
        name, inputs = record.name, record.inputs
        arn = f"arn:aws:mock:us-east-1:123456789012:{record.type.split(':')[-1].lower()}/{name}"
        if record.type == INSTANCE:
            private_ip, public_ip = _addresses(name)
            outputs = {"arn": arn, "privateIp": private_ip, "privateDns": f"ip-{private_ip.replace('.', '-')}.ec2.internal"}
            # Without a public address AWS leaves publicIp empty.
            outputs["publicIp"] = public_ip if inputs.get("associatePublicIpAddress") else ""
            return outputs
        if record.type == NLB:
            return {
                "arn": arn,
                "dnsName": f"{name}-{_digest(name).hex()[:10]}.elb.us-east-1.amazonaws.com",
                "zoneId": NLB_HOSTED_ZONE,
            }
        if record.type == EIP:
            return {"publicIp": "203.0.113." + str(1 + _digest(name)[0] % 250), "allocationId": f"eipalloc-{_digest(name).hex()[:17]}"}
        if record.type == KEY_PAIR:
            return {"keyName": inputs.get("keyName") or f"{name}-{_digest(name).hex()[:7]}", "arn": arn}
        if record.type == RECORD:
            return {"fqdn": inputs.get("name")}
        if record.type.startswith("aws:"):
            return {"arn": arn}
        return {}

    def call(self, args: pulumi.runtime.MockCallArgs):
        with self._lock:
            self.calls.append(args)
        if args.token == GET_AMI:
            names = [v for f in args.args.get("filters", []) if f.get("name") == "name" for v in f.get("values", [])]
            owners = args.args.get("owners", [])
            image_id = "ami-" + _digest("|".join([*owners, *names])).hex()[:17]
            return {"id": image_id, "imageId": image_id, "name": names[0] if names else "", "ownerId": owners[0] if owners else ""}
        return super().call(args)


# --- dependencies ---------------------------------------------------------------------------------


# --- configs --------------------------------------------------------------------------------------


def aws_config(**overrides: Any) -> dict[str, Any]:
    """A valid three-server aws config with two agents, public SSH and an internet-facing NLB.

    Keyword arguments replace top-level keys; `aws=` is merged into the aws object (None deletes a key).
    """
    config: dict[str, Any] = {
        "provider": "aws",
        "version": "v1.33.5+rke2r1",
        "registration": {"mode": "nlb"},
        "servers": {"count": 3, "instanceType": "t3.large"},
        "agents": {"count": 2, "instanceType": "t3.medium"},
        "ssh": {"user": "ubuntu"},
        "aws": {
            "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
            "vpc": {
                "cidr": "10.0.0.0/16",
                "publicSubnetCidrs": ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"],
                "privateSubnetCidrs": ["10.0.128.0/20", "10.0.144.0/20", "10.0.160.0/20"],
            },
            "ami": {"id": "ami-0123456789abcdef0"},
            "publicKey": TEST_PUBLIC_KEY,
            "adminCidrs": ["203.0.113.0/24"],
        },
    }
    aws_overrides = overrides.pop("aws", None) or {}
    config.update(copy.deepcopy(overrides))
    for key, value in aws_overrides.items():
        if value is None:
            config["aws"].pop(key, None)
        else:
            config["aws"][key] = copy.deepcopy(value)
    return with_test_secrets(config)


def run_aws(config: Mapping[str, Any], **kwargs: Any) -> ProgramResult:
    """Runs the program under AwsMocks."""
    return run_program(config, mocks=AwsMocks(), **kwargs)


@functools.lru_cache(maxsize=None)
def shared_stack(stack: str) -> ProgramResult:
    """One evaluation of a stacks/ file per test session, for tests that only read the result."""
    return run_aws_stack(stack)


@functools.lru_cache(maxsize=None)
def shared_default() -> ProgramResult:
    """One evaluation of aws_config() per test session, for tests that only read the result."""
    return run_aws(aws_config())


def run_aws_stack(stack: str, overrides: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> ProgramResult:
    """Runs a stacks/ file under AwsMocks with test secrets."""
    config = {**stack_config(stack), **(overrides or {})}
    return run_program(with_test_secrets(config), mocks=AwsMocks(), stack=stack, **kwargs)
