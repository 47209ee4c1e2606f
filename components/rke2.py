"""RKE2: paths, config keys, installer and services, as the RKE2 HA installation guide describes them."""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence

from components.distribution import CONTROL_PLANE_TAINT


class RKE2:
    """The RKE2 distribution (https://docs.rke2.io/install/ha)."""

    name = "rke2"
    example_version = "v1.33.5+rke2r1"
    # Release candidates (v1.34.1-rc1+rke2r1) are pinned too; channels such as "stable" are not.
    version_pattern = re.compile(r"v\d+\.\d+\.\d+(-rc\d+)?\+rke2r\d+")
    default_install_url = "https://get.rke2.io"
    default_cidrs = {"cluster-cidr": "10.42.0.0/16", "service-cidr": "10.43.0.0/16"}
    registration_port = 9345
    api_port = 6443
    # data-dir and write-kubeconfig would move files the program reads at fixed paths.
    managed_config_keys = frozenset({
        "server", "token", "token-file", "agent-token", "tls-san", "node-name", "node-ip",
        "data-dir", "write-kubeconfig",
    })
    token_path = "/var/lib/rancher/rke2/server/node-token"
    kubeconfig_path = "/etc/rancher/rke2/rke2.yaml"
    kubectl_path = "/var/lib/rancher/rke2/bin/kubectl"
    node_script = "rke2-node.sh"

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
        config: dict[str, Any] = {}
        if server_url:
            config["server"] = server_url
        if token:
            config["token"] = token
        if role == "server" and tls_san:
            config["tls-san"] = list(tls_san)
        if node_name:
            config["node-name"] = node_name
        if node_ip:
            config["node-ip"] = node_ip
        for key, value in extra.items():
            if key != "node-taint":
                config[key] = value
        taints = _as_list(extra.get("node-taint"))
        if taint and CONTROL_PLANE_TAINT not in taints:
            taints.append(CONTROL_PLANE_TAINT)
        if taints:
            config["node-taint"] = taints
        return config

    def node_script_args(
        self, *, role: str, version: str, install_url: str, node_name: Optional[str], ready_timeout_seconds: int
    ) -> list[str]:
        return [role, version, install_url, str(ready_timeout_seconds), node_name or ""]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
