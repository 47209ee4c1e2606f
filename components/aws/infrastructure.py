"""Provider `aws`: the network, machines and registration address, handed to the pools as NodeTargets."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.aws.bastion import Bastion, BastionArgs
from components.aws.machines import Machines, MachinesArgs
from components.aws.network import Network, NetworkArgs
from components.aws.nlb import NetworkLoadBalancer, NetworkLoadBalancerArgs, Target
from components.aws.security import NodeSecurityGroups, NodeSecurityGroupsArgs
from components.aws.settings import AmiSettings, AwsSettings, check_zones_in_region
from components.aws.tags import Tags
from components.config import BastionConfig, ClusterConfig, SshConfig
from components.load_balancer import LoadBalancer, LoadBalancerArgs, RegistrationEndpoint
from components.remote import NodeTarget, connection_args


def ami_id(ami: AmiSettings, parent: pulumi.Resource) -> pulumi.Input[str]:
    """The pinned image's id.

    A name is looked up with its owner and no `most_recent`: AWS keeps AMI names unique per owner and
    region, so the lookup finds exactly one image or fails, and never moves to a newer release.
    Deprecated images stay findable, because deprecation is a date AWS sets, not a choice of ours.
    """
    if ami.id:
        return ami.id
    return aws.ec2.get_ami_output(
        owners=[ami.owner],
        filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[ami.name])],
        include_deprecated=True,
        opts=pulumi.InvokeOutputOptions(parent=parent),
    ).id


class AwsInfrastructure(pulumi.ComponentResource):
    """VPC, security groups, key pair, instances, optional bastion, and the NLB (or the user's address).

    The pools receive only NodeTargets and a RegistrationEndpoint, exactly as for provider `hosts`.
    """

    server_targets: list[NodeTarget]
    agent_targets: list[NodeTarget]
    registration: RegistrationEndpoint
    extra_tls_san: list[pulumi.Input[str]]
    """The custom API DNS name, when set; the registration address itself is added by the ServerPool."""
    outputs: dict[str, Any]
    """Extra stack outputs."""

    def __init__(self, name: str, config: ClusterConfig, opts: Optional[pulumi.ResourceOptions] = None):
        settings: AwsSettings = config.aws
        if settings is None:
            raise ValueError("AwsInfrastructure needs config.aws (provider aws)")
        check_zones_in_region(settings.zones, pulumi.Config("aws").get("region"))
        if config.ssh.user == "root":
            pulumi.log.warn("kube-ha:ssh.user is root; cloud images refuse root logins: "
                            "set the image's user (ubuntu, ec2-user, admin, ...).")
        super().__init__("kube-ha:index:AwsInfrastructure", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        tags = Tags(cluster=settings.cluster_name or f"{pulumi.get_project()}-{stack}", stack=stack, extra=settings.tags)
        public_nodes = settings.ssh_access == "public"

        network = Network(
            f"{name}-network",
            NetworkArgs(vpc=settings.vpc, zones=settings.zones, nat=not public_nodes, tags=tags),
            child,
        )
        security = NodeSecurityGroups(
            f"{name}-security",
            NodeSecurityGroupsArgs(vpc_id=network.vpc_id, settings=settings, ssh_port=config.ssh.port, tags=tags),
            child,
        )
        key_pair = aws.ec2.KeyPair(
            f"{name}-key", public_key=settings.public_key, tags=tags("access", "key"), opts=child
        )
        image = ami_id(settings.ami, self)
        node_subnets = network.public_subnet_ids if public_nodes else network.private_subnet_ids

        def machines(group, security_group) -> Machines:
            return Machines(
                f"{name}-{group.role}s",
                MachinesArgs(
                    group=group,
                    ami_id=image,
                    key_name=key_pair.key_name,
                    subnet_ids=node_subnets,
                    security_group_ids=[security_group.id],
                    public=public_nodes,
                    tags=tags,
                ),
                child,
            )

        servers = machines(settings.servers, security.servers)
        agents = machines(settings.agents, security.agents)

        ssh = config.ssh
        ready: list[pulumi.Resource] = [network, security]
        bastion = None
        if settings.ssh_access == "bastion":
            bastion = Bastion(
                f"{name}-bastion",
                BastionArgs(
                    instance_type=settings.bastion_instance_type,
                    ami_id=image,
                    key_name=key_pair.key_name,
                    subnet_id=network.public_subnet_ids[0],
                    security_group_id=security.bastion.id,
                    tags=tags,
                ),
                child,
            )
            # connection_args takes the proxy from SshConfig.bastion; the address is an Output here.
            ssh = dataclasses.replace(
                config.ssh, bastion=BastionConfig(address=bastion.address, user=config.ssh.user, port=config.ssh.port)
            )
            ready.append(bastion)

        self.server_targets = _targets(servers, ssh, public_nodes, ready)
        self.agent_targets = _targets(agents, ssh, public_nodes, ready)

        self.extra_tls_san = []
        nlb: Optional[NetworkLoadBalancer] = None
        if settings.nlb is not None:
            if settings.nlb.internal:
                nlb_subnets = network.private_subnet_ids or network.public_subnet_ids
            else:
                nlb_subnets = network.public_subnet_ids
            if public_nodes:
                public_addresses = [
                    (target_name, instance.public_ip)
                    for group in (servers, agents)
                    for target_name, instance in zip(group.names, group.instances)
                ]
            else:
                public_addresses = [(f"nat-{zone}", ip) for zone, ip in network.nat_addresses]
            nlb = NetworkLoadBalancer(
                f"{name}-nlb",
                NetworkLoadBalancerArgs(
                    settings=settings.nlb,
                    vpc_id=network.vpc_id,
                    subnet_ids=nlb_subnets,
                    targets=[Target(n, i.id) for n, i in zip(servers.names, servers.instances)],
                    server_security_group=security.servers,
                    node_security_groups=[("servers", security.servers), ("agents", security.agents)],
                    public_node_addresses=public_addresses,
                    admin_cidrs=settings.admin_cidrs,
                    registration_port=settings.registration_port,
                    api_port=settings.api_port,
                    tags=tags,
                ),
                child,
            )
            self.registration = nlb
            if settings.nlb.dns_name:
                self.extra_tls_san.append(settings.nlb.dns_name)
        else:
            self.registration = LoadBalancer(
                f"{name}-registration",
                LoadBalancerArgs(
                    registration=config.registration,
                    backends=[],
                    distribution=config.distribution,
                    ssh=config.ssh,
                ),
                child,
            )

        self.outputs = {
            "vpcId": network.vpc_id,
            "serverInstanceIds": [i.id for i in servers.instances],
            "agentInstanceIds": [i.id for i in agents.instances],
            "securityGroupIds": {"servers": security.servers.id, "agents": security.agents.id},
        }
        if nlb is not None:
            self.outputs["nlbDnsName"] = nlb.dns_name
        if bastion is not None:
            self.outputs["bastionAddress"] = bastion.address
        self.register_outputs(dict(self.outputs))


def _targets(
    machines: Machines, ssh: SshConfig, public: bool, ready: Sequence[pulumi.Resource]
) -> list[NodeTarget]:
    """One NodeTarget per instance. Installs wait for the instance and for the network and security
    components as a whole (a component stands for all its children), so SSH is allowed and the node
    can reach the installer before anything runs."""
    return [
        NodeTarget(
            resource_name=target_name,
            connection=connection_args(instance.public_ip if public else instance.private_ip, ssh),
            cluster_address=instance.private_ip,
            node_name=None,
            node_ip=instance.private_ip,
            depends_on=(instance, *ready),
        )
        for target_name, instance in zip(machines.names, machines.instances)
    ]
