"""The SSH bastion through which the program reaches private nodes (`aws.ssh: bastion`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.aws.machines import metadata_options, root_volume
from components.aws.tags import Tags


@dataclass
class BastionArgs:
    """Inputs of a Bastion."""

    instance_type: str
    """A small type of the AMI's architecture."""
    ami_id: pulumi.Input[str]
    """The nodes' image, so that the same SSH user logs in."""
    key_name: pulumi.Input[str]
    """The nodes' key pair: one private key reaches the bastion and the nodes."""
    subnet_id: pulumi.Input[str]
    """A public subnet."""
    security_group_id: pulumi.Input[str]
    """Allows SSH in from the admin CIDRs and out to the nodes only."""
    tags: Tags
    """Cluster tags."""


class Bastion(pulumi.ComponentResource):
    """One instance with an elastic IP.

    The elastic IP keeps the address stable across a stop and start: the program's SSH connections are
    stored with the address, and a new one would strand them until `pulumi refresh`.
    """

    instance: aws.ec2.Instance
    address: pulumi.Output[str]
    """The public address the program and the admins SSH to."""

    def __init__(self, name: str, args: BastionArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kube-ha:index:Bastion", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.ami_id,
            instance_type=args.instance_type,
            subnet_id=args.subnet_id,
            vpc_security_group_ids=[args.security_group_id],
            key_name=args.key_name,
            associate_public_ip_address=False,
            metadata_options=metadata_options(),
            # The image's own size: the bastion stores nothing.
            root_block_device=root_volume(None, args.tags("bastion", "bastion-root")),
            tags=args.tags("bastion", "bastion"),
            opts=child,
        )
        eip = aws.ec2.Eip(
            f"{name}-eip", domain="vpc", instance=self.instance.id, tags=args.tags("bastion", "bastion"), opts=child
        )
        self.address = eip.public_ip
        self.register_outputs({"address": self.address, "instanceId": self.instance.id})
