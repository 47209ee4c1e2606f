"""Installing one node of either role: its config file and the command that applies it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi
import yaml
from pulumi_command import remote

from components.distribution import Distribution
from components.remote import NodeTarget, content_hash, script_command


@dataclass
class NodeSoftware:
    """What every node installs, shared by the server and agent pools."""

    distribution: Distribution
    """The Kubernetes distribution."""
    version: str
    """Pinned release."""
    install_url: str
    """Installer script URL."""
    ready_timeout_seconds: int
    """How long one node may take to become Ready."""
    sudo: bool
    """Run the scripts through `sudo -n` (the SSH user is not root)."""


def render_node_config(
    software: NodeSoftware,
    *,
    role: str,
    target: NodeTarget,
    token: Optional[pulumi.Output[str]],
    server_url: Optional[pulumi.Input[str]],
    tls_san: Sequence[pulumi.Input[str]],
    taint: bool,
    extra: Mapping[str, Any],
) -> pulumi.Output[str]:
    """The node's config file, a secret because it carries the token."""

    def render(values: list[Any]) -> str:
        token_value, url, node_ip, *sans = values
        config = software.distribution.node_config(
            role=role,
            token=token_value,
            server_url=url,
            tls_san=list(dict.fromkeys(sans)),
            node_name=target.node_name,
            node_ip=node_ip,
            taint=taint,
            extra=extra,
        )
        return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)

    return pulumi.Output.secret(pulumi.Output.all(token, server_url, target.node_ip, *tls_san).apply(render))


def install_node(
    name: str,
    software: NodeSoftware,
    *,
    role: str,
    target: NodeTarget,
    node_config: pulumi.Output[str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> remote.Command:
    """Runs the distribution's node script with the config on stdin; stdout is the node's name."""
    distribution = software.distribution
    args = distribution.node_script_args(
        role=role,
        version=software.version,
        install_url=software.install_url,
        node_name=target.node_name,
        ready_timeout_seconds=software.ready_timeout_seconds,
    )
    return remote.Command(
        name,
        connection=target.connection,
        create=script_command(distribution.node_script, args, software.sudo),
        stdin=node_config,
        triggers=[content_hash(node_config)],
        # The config on stdin holds the token; nothing from this command reaches the logs.
        logging=remote.Logging.NONE,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=[*target.depends_on, *depends_on],
            additional_secret_outputs=["stdin"],
        ),
    )


def node_name_of(install: remote.Command) -> pulumi.Output[str]:
    """The node script prints the node's Kubernetes name as its only line of stdout."""
    return install.stdout.apply(lambda out: (out or "").strip().splitlines()[-1] if (out or "").strip() else "")
