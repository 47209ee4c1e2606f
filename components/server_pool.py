"""The servers: etcd and the control plane, bootstrapped by the first and joined one at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi
from pulumi_command import remote

from components.load_balancer import RegistrationEndpoint
from components.nodes import NodeSoftware, install_node, node_name_of, render_node_config
from components.remote import NodeTarget, script_command


@dataclass
class ServerPoolArgs:
    """Inputs of a ServerPool."""

    servers: Sequence[NodeTarget]
    """The servers, in config order; the first bootstraps the cluster."""
    software: NodeSoftware
    """Distribution, version and installer."""
    registration: RegistrationEndpoint
    """The fixed address the other servers join through."""
    token: Optional[pulumi.Output[str]] = None
    """Cluster token (secret); None lets the first server generate it."""
    tls_san: Sequence[pulumi.Input[str]] = ()
    """Extra API certificate names; the registration address is always added first."""
    taint: bool = False
    """Taint servers CriticalAddonsOnly=true:NoExecute (dedicated control plane)."""
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    """Further node config keys."""


class ServerPool(pulumi.ComponentResource):
    """Bootstraps the first server, reads back its token, then joins the others one at a time.

    Joins are serial because RKE2 adds each joining server to etcd as a learner and etcd allows one
    learner at a time: concurrent joins fail with "too many learner members".
    """

    token: pulumi.Output[str]
    """The cluster token agents join with (secret)."""
    node_names: list[pulumi.Output[str]]
    """Kubernetes names of the servers, in config order."""
    installs: list[remote.Command]
    """One command per server, in join order."""
    bootstrap: list[pulumi.Resource]
    """What agents must wait for: the first server up and its token known."""

    def __init__(self, name: str, args: ServerPoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(
            "kube-ha:index:ServerPool",
            name,
            # Plain facts policies read (an odd count, a pinned version); nothing secret.
            {"serverCount": len(args.servers), "version": args.software.version},
            opts,
        )
        if not args.servers:
            raise ValueError("a server pool needs at least one server")
        software = args.software
        distribution = software.distribution
        tls_san = [args.registration.address, *args.tls_san]
        first, *joiners = args.servers

        first_install = install_node(
            f"{name}-{first.resource_name}",
            software,
            role="server",
            target=first,
            node_config=render_node_config(
                software,
                role="server",
                target=first,
                token=args.token,
                server_url=None,
                tls_san=tls_san,
                taint=args.taint,
                extra=args.extra_config,
            ),
            parent=self,
            depends_on=[],
        )
        self.bootstrap = [first_install]
        if args.token is not None:
            self.token = args.token
        else:
            read_token = remote.Command(
                f"{name}-token",
                connection=first.connection,
                create=script_command("read-secret-file.sh", [distribution.token_path, "120"], software.sudo),
                logging=remote.Logging.NONE,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[first_install],
                    additional_secret_outputs=["stdout", "stderr"],
                ),
            )
            self.token = pulumi.Output.secret(read_token.stdout.apply(lambda out: (out or "").strip()))
            self.bootstrap.append(read_token)

        self.installs = [first_install]
        for target in joiners:
            join = install_node(
                f"{name}-{target.resource_name}",
                software,
                role="server",
                target=target,
                node_config=render_node_config(
                    software,
                    role="server",
                    target=target,
                    token=self.token,
                    server_url=args.registration.registration_url,
                    tls_san=tls_san,
                    taint=args.taint,
                    extra=args.extra_config,
                ),
                parent=self,
                # Serial: each join starts only once the previous server is Ready.
                depends_on=[*self.bootstrap, self.installs[-1], *args.registration.ready],
            )
            self.installs.append(join)

        self.node_names = [node_name_of(install) for install in self.installs]
        self.register_outputs(
            {"serverCount": len(args.servers), "version": software.version, "nodeNames": self.node_names}
        )
