"""Provider `hosts`: machines the user already has, reached over SSH."""

from __future__ import annotations

from components.config import NodeGroupConfig, SshConfig
from components.remote import NodeTarget, connection_args


def host_targets(group: NodeGroupConfig, ssh: SshConfig) -> list[NodeTarget]:
    """One target per configured host, in config order."""
    return [
        NodeTarget(
            resource_name=host.resource_name,
            connection=connection_args(host.address, ssh),
            cluster_address=host.cluster_address,
            node_name=host.name,
            node_ip=host.internal_address,
        )
        for host in group.hosts
    ]
