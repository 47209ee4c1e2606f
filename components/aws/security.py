"""Security groups for the servers, the agents and the bastion, from RKE2's documented inbound rules.

Every rule is its own resource (aws.vpc.SecurityGroupIngressRule/EgressRule), and every source that is
ours is a security-group reference rather than a CIDR, so a new node is allowed by joining a group and
nothing outside the cluster matches by accident. The NLB's group and the rules that name it live with the
NLB (components/aws/nlb.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.aws.settings import AwsSettings, PortRule
from components.aws.tags import Tags

NODE_PORTS = (
    PortRule("tcp", 30000, 32767, "NodePort services (TCP)"),
    PortRule("udp", 30000, 32767, "NodePort services (UDP)"),
)


@dataclass(frozen=True)
class Source:
    """Where allowed traffic comes from: one of our security groups, or a CIDR."""

    label: str
    """Names the source in the rule's description (and resource name, for a group)."""
    security_group: Optional[aws.ec2.SecurityGroup] = None
    """One of our groups: the rule references it instead of an address range."""
    cidr: Optional[pulumi.Input[str]] = None
    """An IPv4 range outside our groups: admins, NodePort clients, an NLB client's public address."""


def cidr_label(cidr: str) -> str:
    """`203.0.113.0/24` -> `203-0-113-0-24`: names a rule by its CIDR so that reordering a list renames nothing."""
    return re.sub(r"[^0-9A-Za-z]+", "-", cidr).strip("-")


def ingress_rule(
    name: str,
    group: aws.ec2.SecurityGroup,
    rule: PortRule,
    source: Source,
    tags: dict,
    parent: pulumi.Resource,
) -> aws.vpc.SecurityGroupIngressRule:
    """Allows `rule` into `group` from `source`."""
    return aws.vpc.SecurityGroupIngressRule(
        name,
        security_group_id=group.id,
        ip_protocol=rule.protocol,
        from_port=rule.from_port,
        to_port=rule.to_port,
        referenced_security_group_id=source.security_group.id if source.security_group else None,
        cidr_ipv4=source.cidr,
        description=f"{rule.description} from {source.label}",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def egress_rule(
    name: str,
    group: aws.ec2.SecurityGroup,
    rule: Optional[PortRule],
    destination: Source,
    tags: dict,
    parent: pulumi.Resource,
) -> aws.vpc.SecurityGroupEgressRule:
    """Allows `rule` out of `group` to `destination`; `rule` None allows every protocol."""
    return aws.vpc.SecurityGroupEgressRule(
        name,
        security_group_id=group.id,
        ip_protocol=rule.protocol if rule else "-1",
        from_port=rule.from_port if rule else None,
        to_port=rule.to_port if rule else None,
        referenced_security_group_id=destination.security_group.id if destination.security_group else None,
        cidr_ipv4=destination.cidr,
        description=f"{rule.description if rule else 'all traffic'} to {destination.label}",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass
class NodeSecurityGroupsArgs:
    """Inputs of NodeSecurityGroups."""

    vpc_id: pulumi.Input[str]
    """The cluster's VPC."""
    settings: AwsSettings
    """Ports (CNI, NodePorts, etcd metrics), admin CIDRs and the SSH path."""
    ssh_port: int
    """The port sshd listens on (`kube-ha:ssh.port`)."""
    tags: Tags
    """Cluster tags."""


class NodeSecurityGroups(pulumi.ComponentResource):
    """One group for the servers, one for the agents, and one for the bastion when there is one.

    Servers and agents are separate groups so that etcd, the supervisor and the API accept servers (and
    agents) without opening them on the agents.
    """

    servers: aws.ec2.SecurityGroup
    agents: aws.ec2.SecurityGroup
    bastion: Optional[aws.ec2.SecurityGroup]

    def __init__(self, name: str, args: NodeSecurityGroupsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kube-ha:index:NodeSecurityGroups", name, None, opts)
        settings, tags = args.settings, args.tags
        child = pulumi.ResourceOptions(parent=self)

        def group(role: str, description: str) -> aws.ec2.SecurityGroup:
            # No inline rules: inline and standalone rules on one group fight over its rule set.
            return aws.ec2.SecurityGroup(
                f"{name}-{role}", vpc_id=args.vpc_id, description=description,
                tags=tags("security", f"{role}-sg"), opts=child,
            )

        self.servers = group("servers", "kube-ha RKE2 servers (etcd, control plane)")
        self.agents = group("agents", "kube-ha RKE2 agents")
        self.bastion = group("bastion", "kube-ha SSH bastion") if settings.ssh_access == "bastion" else None

        servers = Source("servers", security_group=self.servers)
        agents = Source("agents", security_group=self.agents)
        nodes = (servers, agents)
        admins = tuple(Source(f"admin {c}", cidr=c) for c in settings.admin_cidrs)
        ssh = PortRule("tcp", args.ssh_port, args.ssh_port, "SSH")
        ssh_sources = admins if self.bastion is None else (Source("bastion", security_group=self.bastion),)
        registration = PortRule("tcp", settings.registration_port, settings.registration_port, "RKE2 supervisor API")
        api = PortRule("tcp", settings.api_port, settings.api_port, "Kubernetes API")
        kubelet = PortRule("tcp", 10250, 10250, "kubelet")
        etcd = [PortRule("tcp", 2379, 2380, "etcd client and peer")]
        if settings.etcd_metrics:
            etcd.append(PortRule("tcp", 2381, 2381, "etcd metrics"))
        node_port_sources = (*nodes, *(Source(f"nodePort client {c}", cidr=c) for c in settings.node_port_cidrs))

        server_rules: list[tuple[PortRule, Sequence[Source]]] = [
            (registration, nodes),
            # With an NLB, admins reach the API through it (nlb.py); otherwise straight at the servers.
            (api, nodes if settings.nlb else (*nodes, *admins)),
            *((rule, (servers,)) for rule in etcd),
        ]
        shared_rules: list[tuple[PortRule, Sequence[Source]]] = [
            (kubelet, nodes),
            *((rule, nodes) for rule in settings.cni_ports),
            (ssh, ssh_sources),
            *((rule, node_port_sources) for rule in (NODE_PORTS if settings.node_ports else ())),
        ]
        for role, group_resource, rules in (
            ("servers", self.servers, [*server_rules, *shared_rules]),
            ("agents", self.agents, shared_rules),
        ):
            for rule, sources in rules:
                for source in sources:
                    label = cidr_label(source.cidr) if source.cidr else source.label
                    ingress_rule(
                        f"{name}-{role}-{rule.label}-from-{label}", group_resource, rule, source,
                        tags("security", f"{role}-{rule.label}"), self,
                    )
            # Nodes pull the installer, images and charts from wherever they are hosted.
            egress_rule(
                f"{name}-{role}-egress", group_resource, None, Source("anywhere", cidr="0.0.0.0/0"),
                tags("security", f"{role}-egress"), self,
            )

        if self.bastion is not None:
            for admin in admins:
                ingress_rule(
                    f"{name}-bastion-{ssh.label}-from-{cidr_label(str(admin.cidr))}", self.bastion, ssh, admin,
                    tags("security", "bastion-ssh"), self,
                )
            # The bastion only forwards SSH to the nodes; it needs nothing else.
            for node in nodes:
                egress_rule(
                    f"{name}-bastion-{ssh.label}-to-{node.label}", self.bastion, ssh, node,
                    tags("security", "bastion-ssh"), self,
                )

        self.register_outputs({
            "serversSecurityGroupId": self.servers.id,
            "agentsSecurityGroupId": self.agents.id,
            "bastionSecurityGroupId": self.bastion.id if self.bastion else None,
        })
