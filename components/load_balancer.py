"""The fixed registration address in front of the servers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Optional, Protocol, Sequence

import pulumi
from pulumi_command import remote

from components.config import HostConfig, RegistrationConfig, SshConfig
from components.distribution import Distribution
from components.remote import connection_args, content_hash, script_command

TEMPLATES_DIR = Path(__file__).parent / "templates"


class RegistrationEndpoint(Protocol):
    """What the node pools need from any registration address: this LoadBalancer or a cloud one."""

    address: pulumi.Output[str]
    """Host name or IP of the fixed registration address."""
    registration_url: pulumi.Output[str]
    """URL joining nodes register through (`server:` in their config)."""
    api_url: pulumi.Output[str]
    """Kubernetes API URL written into the exported kubeconfig."""
    ready: list[pulumi.Resource]
    """Resources that must finish before any node registers through the address."""


@dataclass(frozen=True)
class Backend:
    """A server the load balancer forwards to."""

    name: str
    """Label in the load balancer's config."""
    address: str
    """Address the load balancer connects to."""


@dataclass
class LoadBalancerArgs:
    """Inputs of a LoadBalancer."""

    registration: RegistrationConfig
    """Mode and address, from `kube-ha:registration`."""
    backends: Sequence[Backend]
    """Every server, in config order."""
    distribution: Distribution
    """Supplies the registration and API ports."""
    ssh: SshConfig
    """How to reach the load balancer hosts."""
    keepalived_password: Optional[pulumi.Output[str]] = None
    """VRRP password (secret); required for haproxy-keepalived."""


def render_haproxy_config(backends: Sequence[Backend], registration_port: int, api_port: int) -> str:
    """HAProxy in TCP mode: every server behind both ports, each health-checked."""

    def server_lines(port: int) -> str:
        return "\n".join(f"    server {b.name} {b.address}:{port} check" for b in backends)

    return Template((TEMPLATES_DIR / "haproxy.cfg").read_text()).substitute(
        registration_port=registration_port,
        api_port=api_port,
        registration_servers=server_lines(registration_port),
        api_servers=server_lines(api_port),
    )


def render_keepalived_config(
    *, vip: str, source_ip: str, peer_ip: str, primary: bool, virtual_router_id: int, password: str, router_name: str
) -> str:
    """Unicast VRRP between the two HAProxy hosts; the first one holds the VIP while it is healthy."""
    return Template((TEMPLATES_DIR / "keepalived.conf").read_text()).substitute(
        router_name=router_name,
        state="MASTER" if primary else "BACKUP",
        priority=101 if primary else 100,
        virtual_router_id=virtual_router_id,
        source_ip=source_ip,
        peer_ip=peer_ip,
        password=password,
        vip=vip,
    )


class LoadBalancer(pulumi.ComponentResource):
    """The registration address: one the user already has, or a Keepalived VIP over two HAProxy hosts."""

    address: pulumi.Output[str]
    registration_url: pulumi.Output[str]
    api_url: pulumi.Output[str]
    ready: list[pulumi.Resource]
    """Resources that must finish before any node registers through the address."""

    def __init__(self, name: str, args: LoadBalancerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kube-ha:index:LoadBalancer", name, None, opts)
        registration = args.registration
        distribution = args.distribution
        if registration.address is None:
            raise ValueError(f"registration mode {registration.mode} is not built by this component")

        self.ready = []
        if registration.mode == "haproxy-keepalived":
            if args.keepalived_password is None:
                raise ValueError("haproxy-keepalived needs keepalived_password")
            self.ready = self._haproxy_keepalived(name, args)

        self.address = pulumi.Output.from_input(registration.address)
        # An IPv6 literal needs brackets in a URL; a DNS name or IPv4 address never has a colon.
        url_host = f"[{registration.address}]" if ":" in registration.address else registration.address
        self.registration_url = pulumi.Output.from_input(f"https://{url_host}:{distribution.registration_port}")
        self.api_url = pulumi.Output.from_input(f"https://{url_host}:{distribution.api_port}")
        self.register_outputs(
            {"address": self.address, "registrationUrl": self.registration_url, "apiUrl": self.api_url}
        )

    def _haproxy_keepalived(self, name: str, args: LoadBalancerArgs) -> list[pulumi.Resource]:
        registration = args.registration
        haproxy_config = render_haproxy_config(
            args.backends, args.distribution.registration_port, args.distribution.api_port
        )
        sudo = args.ssh.user != "root"
        ready: list[pulumi.Resource] = []
        hosts: Sequence[HostConfig] = registration.lb_hosts
        for index, host in enumerate(hosts):
            peer = hosts[1 - index]
            connection = connection_args(host.address, args.ssh)
            haproxy = remote.Command(
                f"{name}-{host.resource_name}-haproxy",
                connection=connection,
                create=script_command("haproxy.sh", [], sudo),
                stdin=haproxy_config,
                triggers=[content_hash(haproxy_config)],
                opts=pulumi.ResourceOptions(parent=self),
            )
            keepalived_config = pulumi.Output.secret(
                args.keepalived_password.apply(
                    lambda password, host=host, peer=peer, index=index: render_keepalived_config(
                        vip=registration.address,
                        source_ip=host.cluster_address,
                        peer_ip=peer.cluster_address,
                        primary=index == 0,
                        virtual_router_id=registration.virtual_router_id,
                        password=password,
                        router_name=host.resource_name,
                    )
                )
            )
            keepalived = remote.Command(
                f"{name}-{host.resource_name}-keepalived",
                connection=connection,
                create=script_command("keepalived.sh", [host.cluster_address, registration.interface or ""], sudo),
                stdin=keepalived_config,
                triggers=[content_hash(keepalived_config)],
                logging=remote.Logging.NONE,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[haproxy], additional_secret_outputs=["stdin"]
                ),
            )
            ready += [haproxy, keepalived]
        return ready
