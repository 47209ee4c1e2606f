"""The last step: every expected node Ready, and a kubeconfig that points at the registration address."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import yaml
from pulumi_command import remote

from components.nodes import NodeSoftware
from components.remote import NodeTarget, content_hash, script_command


@dataclass
class ClusterCheckArgs:
    """Inputs of a ClusterCheck."""

    server: NodeTarget
    """A server to ask (the first one)."""
    software: NodeSoftware
    """Supplies kubectl and kubeconfig paths and the timeout."""
    node_names: Sequence[pulumi.Input[str]]
    """Every node that must be Ready."""
    api_url: pulumi.Input[str]
    """The registration address's API URL, written into the exported kubeconfig."""
    after: Sequence[remote.Command]
    """Every node's install command."""


def point_kubeconfig_at(kubeconfig: str, api_url: str) -> str:
    """The kubeconfig with every cluster's server replaced by `api_url`.

    RKE2 writes `https://127.0.0.1:6443`, which works only on the server itself.
    """
    try:
        document = yaml.safe_load(kubeconfig)
    except yaml.YAMLError:
        # The parser's message quotes the offending line, which may hold key material.
        raise ValueError("the server's kubeconfig is not valid YAML") from None
    if not isinstance(document, dict) or not document.get("clusters"):
        raise ValueError("the server's kubeconfig has no clusters")
    for cluster in document["clusters"]:
        cluster["cluster"]["server"] = api_url
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


class ClusterCheck(pulumi.ComponentResource):
    """Waits, bounded, until every expected node is Ready, then reads the admin kubeconfig."""

    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig pointing at the registration address (secret)."""

    def __init__(self, name: str, args: ClusterCheckArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kube-ha:index:ClusterCheck", name, None, opts)
        software = args.software
        distribution = software.distribution
        nodes_ready = remote.Command(
            f"{name}-nodes-ready",
            connection=args.server.connection,
            create=script_command(
                "wait-nodes-ready.sh",
                [
                    distribution.kubectl_path,
                    distribution.kubeconfig_path,
                    str(software.ready_timeout_seconds),
                    *args.node_names,
                ],
                software.sudo,
            ),
            # Any node command that runs again (an upgrade, a changed config) must be checked again,
            # not only a change of the node list.
            triggers=[content_hash(pulumi.Output.all(*[c.create for c in args.after],
                                                      *[c.triggers for c in args.after]).apply(json.dumps))],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        read_kubeconfig = remote.Command(
            f"{name}-kubeconfig",
            connection=args.server.connection,
            create=script_command("read-secret-file.sh", [distribution.kubeconfig_path, "60"], software.sudo),
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[nodes_ready], additional_secret_outputs=["stdout", "stderr"]
            ),
        )
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(read_kubeconfig.stdout, args.api_url).apply(
                lambda values: point_kubeconfig_at(values[0], values[1])
            )
        )
        self.register_outputs({"kubeconfig": self.kubeconfig})
