"""The agents: workers that join through the registration address, all at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi
from pulumi_command import remote

from components.load_balancer import RegistrationEndpoint
from components.remote import NodeTarget
from components.nodes import NodeSoftware, install_node, node_name_of, render_node_config


@dataclass
class AgentPoolArgs:
    """Inputs of an AgentPool."""

    agents: Sequence[NodeTarget]
    """The agents; may be empty."""
    software: NodeSoftware
    """Distribution, version and installer."""
    registration: RegistrationEndpoint
    """The fixed address agents register through."""
    token: pulumi.Output[str]
    """Cluster token (secret), from the server pool."""
    bootstrap: Sequence[pulumi.Resource]
    """The first server and its token: all an agent waits for."""
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    """Further node config keys."""


class AgentPool(pulumi.ComponentResource):
    """Agents join in parallel; they wait for the first server and the load balancer only, not for
    the other servers' joins, because any Ready server behind the address can register them."""

    node_names: list[pulumi.Output[str]]
    """Kubernetes names of the agents, in config order."""
    installs: list[remote.Command]
    """One command per agent."""

    def __init__(self, name: str, args: AgentPoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(
            "kube-ha:index:AgentPool", name, {"agentCount": len(args.agents), "version": args.software.version}, opts
        )
        self.installs = [
            install_node(
                f"{name}-{target.resource_name}",
                args.software,
                role="agent",
                target=target,
                node_config=render_node_config(
                    args.software,
                    role="agent",
                    target=target,
                    token=args.token,
                    server_url=args.registration.registration_url,
                    tls_san=(),
                    taint=False,
                    extra=args.extra_config,
                ),
                parent=self,
                depends_on=[*args.bootstrap, *args.registration.ready],
            )
            for target in args.agents
        ]
        self.node_names = [node_name_of(install) for install in self.installs]
        self.register_outputs({"agentCount": len(args.agents), "nodeNames": self.node_names})
