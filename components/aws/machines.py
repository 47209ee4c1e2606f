"""EC2 instances of one role (servers or agents), spread over the zones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.aws.settings import MachineGroupSettings
from components.aws.tags import Tags


def metadata_options() -> aws.ec2.InstanceMetadataOptionsArgs:
    """IMDSv2 only, one hop: a server-side request forgery cannot read the metadata service, and pods
    (one network hop further away) cannot reach it at all."""
    return aws.ec2.InstanceMetadataOptionsArgs(
        http_endpoint="enabled",
        http_tokens="required",
        http_put_response_hop_limit=1,
    )


def root_volume(size_gb: Optional[int], tags: dict) -> aws.ec2.InstanceRootBlockDeviceArgs:
    """An encrypted gp3 root volume: etcd, and with it every Kubernetes Secret, lives there.

    Tagged here rather than with the instance's `volume_tags`, which would also claim the tags of
    volumes a CSI driver attaches later and fight it on every update.
    """
    return aws.ec2.InstanceRootBlockDeviceArgs(
        encrypted=True,
        volume_type="gp3",
        volume_size=size_gb,
        delete_on_termination=True,
        tags=tags,
    )


@dataclass
class MachinesArgs:
    """Inputs of Machines."""

    group: MachineGroupSettings
    """Role, count, instance type and volume size."""
    ami_id: pulumi.Input[str]
    """The pinned image."""
    key_name: pulumi.Input[str]
    """EC2 key pair holding the SSH public key."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """One subnet per zone; instance i goes to subnet i modulo their count."""
    security_group_ids: Sequence[pulumi.Input[str]]
    """The role's security group."""
    public: bool
    """Give each instance a public address (`aws.ssh: public`)."""
    tags: Tags
    """Cluster tags."""


class Machines(pulumi.ComponentResource):
    """`count` instances named `<role>-1`, `<role>-2`, ...: adding one never renames another."""

    instances: list[aws.ec2.Instance]
    """In order; instance i is `names[i]`."""
    names: list[str]
    """`server-1`, `agent-3`, ...: stable names for the resources that configure each machine."""

    def __init__(self, name: str, args: MachinesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kube-ha:index:Machines", name, {"role": args.group.role, "count": args.group.count}, opts)
        group = args.group
        self.names = [f"{group.role}-{index + 1}" for index in range(group.count)]
        self.instances = [
            aws.ec2.Instance(
                f"{name}-{index + 1}",
                ami=args.ami_id,
                instance_type=group.instance_type,
                subnet_id=args.subnet_ids[index % len(args.subnet_ids)],
                vpc_security_group_ids=list(args.security_group_ids),
                key_name=args.key_name,
                associate_public_ip_address=args.public,
                metadata_options=metadata_options(),
                root_block_device=root_volume(group.root_volume_size, args.tags(group.role, f"{node_name}-root")),
                tags=args.tags(group.role, node_name),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for index, node_name in enumerate(self.names)
        ]
        self.register_outputs({"instanceIds": [i.id for i in self.instances]})
