"""The seam between the node pools and a Kubernetes distribution.

The pools know only this interface: which config file a node reads, which keys join it to a cluster,
which script installs it and where its token and kubeconfig land. RKE2 is the one implementation
today; k3s and kubeadm plug in here without touching the pools.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Protocol, Sequence

# Keeps ordinary workloads off servers that are meant to run only etcd and the control plane.
CONTROL_PLANE_TAINT = "CriticalAddonsOnly=true:NoExecute"


class Distribution(Protocol):
    """What the load balancer and node pools need to know about a Kubernetes distribution."""

    name: str
    """Short name used in config (`kube-ha:distribution`)."""
    example_version: str
    """A pinned release, shown in error messages."""
    version_pattern: re.Pattern[str]
    """Matches pinned releases only, never channels such as `latest`."""
    default_install_url: str
    """The official installer script."""
    default_cidrs: Mapping[str, str]
    """Node-config keys of the pod and service networks, with their defaults."""
    registration_port: int
    """TCP port new nodes register through."""
    api_port: int
    """TCP port of the Kubernetes API."""
    managed_config_keys: frozenset[str]
    """Node-config keys the program sets itself; users may not set them in `config`."""
    token_path: str
    """File on the first server that holds the generated cluster token."""
    kubeconfig_path: str
    """Admin kubeconfig on every server."""
    kubectl_path: str
    """kubectl as installed on servers."""
    node_script: str
    """File name, under components/scripts, of the script that installs and starts a node."""

    def node_config(
        self,
        *,
        role: str,
        token: Optional[str],
        server_url: Optional[str],
        tls_san: Sequence[str],
        node_name: Optional[str],
        node_ip: Optional[str],
        taint: bool,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The node's config file as a mapping. `server_url` is None on the server that bootstraps."""
        ...

    def node_script_args(
        self, *, role: str, version: str, install_url: str, node_name: Optional[str], ready_timeout_seconds: int
    ) -> list[str]:
        """Arguments of `node_script`; the node config arrives on its standard input."""
        ...


def get_distribution(name: str) -> Distribution:
    """The distribution called `name`; KeyError with the fix when there is none."""
    from components.rke2 import RKE2

    known: dict[str, Distribution] = {"rke2": RKE2()}
    if name not in known:
        raise KeyError(f"set kube-ha:distribution to one of: {', '.join(known)} (k3s and kubeadm are planned)")
    return known[name]
