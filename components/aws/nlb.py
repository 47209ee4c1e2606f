"""The registration address on AWS: a network load balancer in front of every server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.aws.security import Source, cidr_label, egress_rule, ingress_rule
from components.aws.settings import NlbSettings, PortRule
from components.aws.tags import Tags


@dataclass(frozen=True)
class Target:
    """A server behind the load balancer."""

    name: str
    """Stable piece of the attachment's resource name (`server-1`)."""
    instance_id: pulumi.Input[str]
    """The EC2 instance the target groups forward to."""


@dataclass
class NetworkLoadBalancerArgs:
    """Inputs of a NetworkLoadBalancer."""

    settings: NlbSettings
    """Scheme and the optional custom DNS name."""
    vpc_id: pulumi.Input[str]
    """The cluster's VPC."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """One subnet per zone: public for an internet-facing NLB, private (when there are any) for an internal one."""
    targets: Sequence[Target]
    """Every server."""
    server_security_group: aws.ec2.SecurityGroup
    """The servers' group: it gains rules admitting the NLB, and the NLB may send only to it."""
    node_security_groups: Sequence[tuple[str, aws.ec2.SecurityGroup]]
    """(label, group) of every node group, the NLB's clients inside the VPC."""
    public_node_addresses: Sequence[tuple[str, pulumi.Input[str]]]
    """(label, public IP) the nodes reach an internet-facing NLB from: their own public IPs or the NAT
    gateways'. Unused when internal."""
    admin_cidrs: Sequence[str]
    """May reach the Kubernetes API through the NLB."""
    registration_port: int
    """Supervisor port (9345)."""
    api_port: int
    """Kubernetes API port (6443)."""
    tags: Tags
    """Cluster tags."""


class NetworkLoadBalancer(pulumi.ComponentResource):
    """A network load balancer with TCP listeners on the supervisor and API ports, each forwarding to a
    target group of every server with a TCP health check, and its own security group.

    Client IP preservation is off: with it on, a server whose join is balanced back onto itself sees
    its own address as the source and the kernel drops the reply (the NLB hairpin problem). The servers
    then see the NLB's address, and admit it by the NLB's security group.
    """

    address: pulumi.Output[str]
    """The NLB's DNS name."""
    registration_url: pulumi.Output[str]
    api_url: pulumi.Output[str]
    """Through the custom DNS name when one is set, since it outlives a replaced NLB."""
    ready: list[pulumi.Resource]
    """Listeners, attachments and rules: a join through the NLB must wait for all of them."""
    dns_name: pulumi.Output[str]
    security_group: aws.ec2.SecurityGroup

    def __init__(self, name: str, args: NetworkLoadBalancerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kube-ha:index:NetworkLoadBalancer", name, None, opts)
        settings, tags = args.settings, args.tags
        child = pulumi.ResourceOptions(parent=self)
        ports = (
            ("supervisor", PortRule("tcp", args.registration_port, args.registration_port, "RKE2 supervisor API")),
            ("api", PortRule("tcp", args.api_port, args.api_port, "Kubernetes API")),
        )
        self.ready = []
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id, description="kube-ha registration NLB",
            tags=tags("registration", "nlb-sg"), opts=child,
        )
        self.ready += self._rules(name, args, ports)

        lb = aws.lb.LoadBalancer(
            f"{name}-lb",
            load_balancer_type="network",
            internal=settings.internal,
            ip_address_type="ipv4",
            subnets=list(args.subnet_ids),
            security_groups=[self.security_group.id],
            # A zone whose servers are all down still gets its share of connections otherwise.
            enable_cross_zone_load_balancing=True,
            tags=tags("registration", "nlb"),
            opts=child,
        )
        self.ready.append(lb)
        for label, port in ports:
            target_group = aws.lb.TargetGroup(
                f"{name}-{label}",
                port=port.from_port,
                protocol="TCP",
                target_type="instance",
                vpc_id=args.vpc_id,
                preserve_client_ip="false",
                # Long enough for open watches to move, short enough that replacing a server is not slow.
                deregistration_delay=30,
                health_check=aws.lb.TargetGroupHealthCheckArgs(
                    enabled=True,
                    protocol="TCP",
                    port="traffic-port",
                    interval=10,
                    healthy_threshold=3,
                    unhealthy_threshold=3,
                ),
                tags=tags("registration", f"nlb-{label}"),
                opts=child,
            )
            listener = aws.lb.Listener(
                f"{name}-{label}",
                load_balancer_arn=lb.arn,
                port=port.from_port,
                protocol="TCP",
                default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
                tags=tags("registration", f"nlb-{label}"),
                opts=child,
            )
            self.ready.append(listener)
            for target in args.targets:
                self.ready.append(aws.lb.TargetGroupAttachment(
                    f"{name}-{label}-{target.name}",
                    target_group_arn=target_group.arn,
                    target_id=target.instance_id,
                    port=port.from_port,
                    opts=child,
                ))

        self.dns_name = lb.dns_name
        self.address = lb.dns_name
        api_host: pulumi.Input[str] = lb.dns_name
        if settings.dns_name:
            api_host = settings.dns_name
            if settings.zone_id:
                aws.route53.Record(
                    f"{name}-dns",
                    zone_id=settings.zone_id,
                    name=settings.dns_name,
                    type="A",
                    # An alias follows the NLB's addresses and costs no lookups.
                    aliases=[aws.route53.RecordAliasArgs(
                        name=lb.dns_name, zone_id=lb.zone_id, evaluate_target_health=True,
                    )],
                    opts=child,
                )
        self.registration_url = pulumi.Output.concat("https://", self.address, f":{args.registration_port}")
        self.api_url = pulumi.Output.concat("https://", api_host, f":{args.api_port}")
        self.register_outputs({
            "address": self.address,
            "registrationUrl": self.registration_url,
            "apiUrl": self.api_url,
            "securityGroupId": self.security_group.id,
        })

    def _rules(
        self, name: str, args: NetworkLoadBalancerArgs, ports: Sequence[tuple[str, PortRule]]
    ) -> list[pulumi.Resource]:
        tags = args.tags
        nlb = Source("nlb", security_group=self.security_group)
        if args.settings.internal:
            clients = [Source(label, security_group=group) for label, group in args.node_security_groups]
        else:
            # Inside the VPC an internet-facing NLB's name resolves to its public addresses, so the nodes
            # arrive from their public (or NAT) addresses, which no security group reference matches.
            clients = [Source(label, cidr=pulumi.Output.concat(ip, "/32")) for label, ip in args.public_node_addresses]
        admins = [Source(f"admin {c}", cidr=c) for c in args.admin_cidrs]
        rules: list[pulumi.Resource] = []
        for label, port in ports:
            sources = [*clients, *admins] if label == "api" else clients
            for source in sources:
                source_label = cidr_label(source.cidr) if isinstance(source.cidr, str) else source.label
                rules.append(ingress_rule(
                    f"{name}-{port.label}-from-{source_label}", self.security_group, port, source,
                    tags("registration", f"nlb-{port.label}"), self,
                ))
            # Health checks obey the NLB's outbound rules; traffic goes to the servers only.
            rules.append(egress_rule(
                f"{name}-{port.label}-to-servers", self.security_group, port,
                Source("servers", security_group=args.server_security_group),
                tags("registration", f"nlb-{port.label}"), self,
            ))
            rules.append(ingress_rule(
                f"{name}-servers-{port.label}-from-nlb", args.server_security_group, port, nlb,
                tags("registration", f"servers-{port.label}"), self,
            ))
        return rules
