"""Builds the whole cluster from a validated ClusterConfig."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.agent_pool import AgentPool, AgentPoolArgs
from components.cluster_check import ClusterCheck, ClusterCheckArgs
from components.config import ClusterConfig
from components.hosts import host_targets
from components.load_balancer import Backend, LoadBalancer, LoadBalancerArgs, RegistrationEndpoint
from components.nodes import NodeSoftware
from components.remote import NodeTarget
from components.server_pool import ServerPool, ServerPoolArgs


@dataclass
class Cluster:
    """What the program exports."""

    registration: RegistrationEndpoint
    servers: ServerPool
    agents: AgentPool
    check: ClusterCheck
    server_targets: list[NodeTarget]
    agent_targets: list[NodeTarget]
    extra_outputs: dict


def build_cluster(config: ClusterConfig) -> Cluster:
    """Machines, registration address, servers, agents and the final check, in dependency order."""
    extra_outputs: dict = {}
    extra_tls_san: list[pulumi.Input[str]] = []
    if config.provider == "aws":
        from components.aws.infrastructure import AwsInfrastructure

        infrastructure = AwsInfrastructure("aws", config)
        server_targets = infrastructure.server_targets
        agent_targets = infrastructure.agent_targets
        registration: RegistrationEndpoint = infrastructure.registration
        extra_outputs = infrastructure.outputs
        extra_tls_san = infrastructure.extra_tls_san
    else:
        server_targets = host_targets(config.servers, config.ssh)
        agent_targets = host_targets(config.agents, config.ssh)
        registration = LoadBalancer(
            "lb",
            LoadBalancerArgs(
                registration=config.registration,
                backends=[Backend(t.resource_name, str(t.cluster_address)) for t in server_targets],
                distribution=config.distribution,
                ssh=config.ssh,
                keepalived_password=config.keepalived_password,
            ),
        )

    software = NodeSoftware(
        distribution=config.distribution,
        version=config.version,
        install_url=config.install_url,
        ready_timeout_seconds=config.ready_timeout_seconds,
        sudo=config.ssh.user != "root",
    )
    servers = ServerPool(
        "servers",
        ServerPoolArgs(
            servers=server_targets,
            software=software,
            registration=registration,
            token=config.token,
            tls_san=[*config.tls_san, *extra_tls_san],
            taint=config.servers.taint,
            extra_config=config.servers.extra_config,
        ),
    )
    agents = AgentPool(
        "agents",
        AgentPoolArgs(
            agents=agent_targets,
            software=software,
            registration=registration,
            token=servers.token,
            bootstrap=servers.bootstrap,
            extra_config=config.agents.extra_config,
        ),
    )
    check = ClusterCheck(
        "cluster",
        ClusterCheckArgs(
            server=server_targets[0],
            software=software,
            node_names=[*servers.node_names, *agents.node_names],
            api_url=registration.api_url,
            after=[*servers.installs, *agents.installs],
        ),
    )
    return Cluster(registration, servers, agents, check, server_targets, agent_targets, extra_outputs)


def node_summary(targets: list[NodeTarget], names: list[pulumi.Output[str]]) -> list[dict]:
    """Name and address of each node, for the stack outputs."""
    return [{"name": name, "address": target.cluster_address} for target, name in zip(targets, names)]
