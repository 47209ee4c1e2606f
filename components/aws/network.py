"""The VPC: public and private subnets, one of each per zone, or the ones of an existing VPC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.aws.settings import VpcSettings
from components.aws.tags import Tags


@dataclass
class NetworkArgs:
    """Inputs of a Network."""

    vpc: VpcSettings
    """The VPC to create, or the existing one to use."""
    zones: Sequence[str]
    """Availability zones; subnet i lies in zone i."""
    nat: bool
    """Private machines must reach the internet (the installer, image registries): build NAT gateways."""
    tags: Tags
    """Cluster tags."""


class Network(pulumi.ComponentResource):
    """A new VPC with an internet gateway, public subnets and NATed private subnets, or an existing VPC.

    Machines depend on this component as a whole, so no node installs before its subnet routes to the
    internet.
    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    """One per zone, in zone order."""
    private_subnet_ids: list[pulumi.Output[str]]
    """One per zone, in zone order; empty when there are none."""
    nat_addresses: list[tuple[str, pulumi.Output[str]]]
    """(zone, public IP) of each NAT gateway: the source address private machines reach the internet from."""

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kube-ha:index:Network", name, None, opts)
        vpc = args.vpc
        self.nat_addresses = []
        if vpc.existing:
            self.vpc_id = pulumi.Output.from_input(vpc.id)
            self.public_subnet_ids = [pulumi.Output.from_input(i) for i in vpc.public_subnet_ids]
            self.private_subnet_ids = [pulumi.Output.from_input(i) for i in vpc.private_subnet_ids]
        else:
            self._build(name, args)
        self.register_outputs({
            "vpcId": self.vpc_id,
            "publicSubnetIds": self.public_subnet_ids,
            "privateSubnetIds": self.private_subnet_ids,
        })

    def _build(self, name: str, args: NetworkArgs) -> None:
        settings, tags = args.vpc, args.tags
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=settings.cidr,
            # RKE2 names nodes after their hostnames, which come from VPC DNS.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags("network", "vpc"),
            opts=child,
        )
        self.vpc_id = vpc.id
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=tags("network", "igw"), opts=child
        )
        public_table = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, tags=tags("network", "public"), opts=child
        )
        aws.ec2.Route(
            f"{name}-public-internet",
            route_table_id=public_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=child,
        )

        public_subnets = []
        for zone, cidr in zip(args.zones, settings.public_subnet_cidrs):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                # Instances ask for a public address explicitly; nothing gets one by accident.
                map_public_ip_on_launch=False,
                tags=tags("network", f"public-{zone}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=subnet.id, route_table_id=public_table.id, opts=child
            )
            public_subnets.append(subnet)
        self.public_subnet_ids = [s.id for s in public_subnets]

        nat_gateways: list[aws.ec2.NatGateway] = []
        if args.nat and settings.private_subnet_cidrs:
            nat_zones = args.zones if settings.nat_gateways == "perZone" else args.zones[:1]
            for zone, subnet in zip(nat_zones, public_subnets):
                address = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags=tags("network", f"nat-{zone}"), opts=child)
                nat_gateways.append(aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=address.id,
                    subnet_id=subnet.id,
                    tags=tags("network", f"nat-{zone}"),
                    # AWS refuses a NAT gateway in a VPC whose internet gateway is not attached yet.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                ))
                self.nat_addresses.append((zone, address.public_ip))

        self.private_subnet_ids = []
        for index, (zone, cidr) in enumerate(zip(args.zones, settings.private_subnet_cidrs)):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=tags("network", f"private-{zone}"),
                opts=child,
            )
            # One table per zone so that with a NAT gateway per zone, a zone's traffic stays in the zone.
            table = aws.ec2.RouteTable(
                f"{name}-private-{zone}", vpc_id=vpc.id, tags=tags("network", f"private-{zone}"), opts=child
            )
            if nat_gateways:
                aws.ec2.Route(
                    f"{name}-private-{zone}-internet",
                    route_table_id=table.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat_gateways[index if len(nat_gateways) > 1 else 0].id,
                    opts=child,
                )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=table.id, opts=child
            )
            self.private_subnet_ids.append(subnet.id)
