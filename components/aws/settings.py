"""`kube-ha:aws` and the AWS fields of `servers`, `agents` and `registration`, validated into AwsSettings.

Every check runs before any resource is registered, so a typo stops `pulumi up` with one ConfigError
instead of a VPC without machines. Nothing here calls AWS: the same config always yields the same
settings, which is what keeps two runs registering identical inputs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi

from components.config import (
    ConfigError,
    NodeGroupConfig,
    RegistrationConfig,
    cluster_networks,
    parse_bool,
    parse_choice,
    parse_int,
    reject_unknown_fields,
)
from components.distribution import Distribution

SSH_ACCESS = ("public", "bastion")
NAT_GATEWAYS = ("perZone", "one")
DEFAULT_ROOT_VOLUME_GB = 50
DEFAULT_BASTION_INSTANCE_TYPE = "t3.micro"
# AWS's default quota of inbound rules per security group; the NLB's group is the one that can reach it.
SECURITY_GROUP_RULE_QUOTA = 60

AWS_KEYS = frozenset({
    "zones", "vpc", "ami", "publicKey", "adminCidrs", "ssh", "bastion", "rootVolumeSize",
    "nodePorts", "nodePortCidrs", "name", "tags",
})
GROUP_KEYS = frozenset({"count", "instanceType", "rootVolumeSize", "taint", "config"})
NLB_KEYS = frozenset({"mode", "internal", "dnsName", "zoneId"})

_ZONE = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+)[a-z]$")
# family (a letter run, a generation digit, options, optional -suffixes) . size
_INSTANCE_TYPE = re.compile(
    r"^[a-z]+-?\d[a-z0-9]*(?:-[a-z0-9]+)*\.(?:nano|micro|small|medium|large|\d*xlarge|metal(?:-\d+xl)?)$"
)
_AMI_ID = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_VPC_ID = re.compile(r"^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_SUBNET_ID = re.compile(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_PUBLIC_KEY = re.compile(r"^(?:ssh-ed25519|ssh-rsa) AAAA[A-Za-z0-9+/]+={0,3}(?: [^\n]*)?$")
_CLUSTER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


@dataclass(frozen=True)
class PortRule:
    """One protocol and port range a security group opens."""

    protocol: str
    """`tcp`, `udp` or `icmp`."""
    from_port: int
    """First port, or the ICMP type."""
    to_port: int
    """Last port, or the ICMP code."""
    description: str
    """What listens there, for the rule's description."""

    @property
    def label(self) -> str:
        """A stable piece of a resource name: `8472-udp`, `2379-2380-tcp`, `icmp-8`."""
        if self.protocol == "icmp":
            return f"icmp-{self.from_port}"
        ports = str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"
        return f"{ports}-{self.protocol}"


# RKE2's documented CNI inbound rules (https://docs.rke2.io/install/requirements#cni-specific-inbound-network-rules).
# WireGuard ports are left out: RKE2 enables WireGuard only through a HelmChartConfig this program never writes.
CNI_PORTS: Mapping[str, tuple[PortRule, ...]] = {
    "canal": (
        PortRule("udp", 8472, 8472, "Canal VXLAN"),
        PortRule("tcp", 9099, 9099, "Canal health checks"),
    ),
    "cilium": (
        PortRule("icmp", 8, 0, "Cilium health checks (echo request)"),
        PortRule("tcp", 4240, 4240, "Cilium health checks"),
        PortRule("udp", 8472, 8472, "Cilium VXLAN"),
    ),
    "calico": (
        PortRule("tcp", 179, 179, "Calico BGP"),
        PortRule("udp", 4789, 4789, "Calico VXLAN"),
        PortRule("tcp", 5473, 5473, "Calico Typha"),
        PortRule("tcp", 9098, 9098, "Calico Typha health checks"),
        PortRule("tcp", 9099, 9099, "Calico health checks"),
    ),
    "flannel": (PortRule("udp", 4789, 4789, "Flannel VXLAN"),),
}
# Multus only chains another CNI; `none` means the user brings their own and opens its ports.
CNI_WITHOUT_PORTS = ("multus", "none")


@dataclass(frozen=True)
class VpcSettings:
    """A new VPC (`id` None) or an existing one."""

    cidr: str
    """The VPC's IPv4 CIDR; for an existing VPC, stated so that it can be checked against the pod network."""
    id: Optional[str] = None
    """An existing VPC; None to create one."""
    public_subnet_cidrs: tuple[str, ...] = ()
    """New VPC: one public subnet per zone, in zone order."""
    private_subnet_cidrs: tuple[str, ...] = ()
    """New VPC: one private subnet per zone, in zone order; empty when nothing is private."""
    public_subnet_ids: tuple[str, ...] = ()
    """Existing VPC: one public subnet per zone, in zone order."""
    private_subnet_ids: tuple[str, ...] = ()
    """Existing VPC: one private subnet per zone, in zone order."""
    nat_gateways: str = "perZone"
    """New VPC with private subnets: `perZone` (a zone outage leaves the others online) or `one` (cheaper)."""

    @property
    def existing(self) -> bool:
        return self.id is not None


@dataclass(frozen=True)
class AmiSettings:
    """The machine image, pinned: an id, or an exact name from a pinned owner account."""

    id: Optional[str] = None
    """An AMI id such as ami-0123456789abcdef0."""
    name: Optional[str] = None
    """An exact AMI name (no wildcards), looked up once per run."""
    owner: Optional[str] = None
    """The 12-digit account that owns `name`; an alias would let another account's image match."""


@dataclass(frozen=True)
class MachineGroupSettings:
    """The EC2 side of the servers or the agents."""

    role: str
    """`server` or `agent`: tags and resource names."""
    count: int
    """How many instances."""
    instance_type: Optional[str]
    """EC2 instance type; None only when `count` is 0."""
    root_volume_size: int
    """Root volume size in GiB."""


@dataclass(frozen=True)
class NlbSettings:
    """The network load balancer that is the registration address (`registration.mode: nlb`)."""

    internal: bool
    """Internal scheme (reached from the VPC, a VPN or a peering) instead of internet-facing."""
    dns_name: Optional[str] = None
    """A custom name for the API, added to the servers' tls-san and used in the kubeconfig."""
    zone_id: Optional[str] = None
    """Route 53 hosted zone in which to create `dns_name` as an alias of the NLB."""


@dataclass(frozen=True)
class AwsSettings:
    """Everything the AWS components need, validated."""

    zones: tuple[str, ...]
    """Availability zones, in order: machine i goes to zone i modulo the count."""
    vpc: VpcSettings
    """The VPC to create or to use."""
    ami: AmiSettings
    """The pinned machine image of every node and the bastion."""
    public_key: str
    """OpenSSH public key imported as the instances' key pair."""
    admin_cidrs: tuple[str, ...]
    """Who may SSH (to the nodes or the bastion) and reach the Kubernetes API."""
    ssh_access: str
    """`public`: nodes in public subnets, SSH from admin_cidrs. `bastion`: private nodes behind a bastion."""
    servers: MachineGroupSettings
    """The server instances."""
    agents: MachineGroupSettings
    """The agent instances (possibly none)."""
    bastion_instance_type: Optional[str]
    """The bastion's instance type, when ssh_access is `bastion`."""
    nlb: Optional[NlbSettings]
    """None when the registration address is one the user has (`registration.mode: address`)."""
    cni: str
    """The servers' `cni` config key, first non-Multus entry; `canal` when unset."""
    cni_ports: tuple[PortRule, ...]
    """Ports the CNI needs between all nodes."""
    etcd_metrics: bool
    """Servers set `etcd-expose-metrics`, so 2381 is opened between servers."""
    node_ports: bool
    """Open the NodePort range (TCP and UDP 30000-32767) between nodes and from node_port_cidrs."""
    node_port_cidrs: tuple[str, ...]
    """Further sources allowed to reach NodePorts."""
    registration_port: int
    """The distribution's supervisor port (RKE2: 9345)."""
    api_port: int
    """The Kubernetes API port (6443)."""
    cluster_name: Optional[str] = None
    """The cluster's name in tags; `<project>-<stack>` when None."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on every AWS resource that takes tags."""

    @property
    def node_count(self) -> int:
        return self.servers.count + self.agents.count


def parse_aws_settings(
    raw: Any,
    servers: NodeGroupConfig,
    agents: NodeGroupConfig,
    registration: RegistrationConfig,
    distribution: Distribution,
) -> AwsSettings:
    """Validates `kube-ha:aws` with the AWS fields of the node groups and the registration."""
    if raw is None:
        raise ConfigError(
            "aws", "missing",
            "set kube-ha:aws with at least zones, vpc, ami, publicKey and adminCidrs (see docs/aws.md)",
        )
    raw = _object(raw, "aws", "set kube-ha:aws as an object (see docs/aws.md)")
    reject_unknown_fields(raw, "aws", AWS_KEYS)

    ssh_access = parse_choice(raw.get("ssh", "public"), SSH_ACCESS, "aws.ssh")
    zones = _zones(raw.get("zones"), servers.count)
    admin_cidrs = _admin_cidrs(raw.get("adminCidrs"), ssh_access)
    vpc = _vpc(raw.get("vpc"), len(zones), ssh_access)
    ami = _ami(raw.get("ami"))
    public_key = _public_key(raw.get("publicKey"))
    default_volume = parse_int(raw.get("rootVolumeSize"), "aws.rootVolumeSize", DEFAULT_ROOT_VOLUME_GB, 8, 16384)
    server_group = _machine_group(servers, "servers", "server", default_volume)
    agent_group = _machine_group(agents, "agents", "agent", default_volume)
    bastion_type = _bastion(raw.get("bastion"), ssh_access)
    nlb = _nlb(registration)
    cni, cni_ports = _cni(servers.extra_config.get("cni"))
    node_ports = parse_bool(raw.get("nodePorts"), "aws.nodePorts")
    node_port_cidrs = _cidr_list(raw.get("nodePortCidrs"), "aws.nodePortCidrs", allow_world=True)
    if node_port_cidrs and not node_ports:
        raise ConfigError("aws.nodePortCidrs", "NodePorts are closed", "set aws.nodePorts: true, or remove nodePortCidrs")

    settings = AwsSettings(
        zones=zones,
        vpc=vpc,
        ami=ami,
        public_key=public_key,
        admin_cidrs=admin_cidrs,
        ssh_access=ssh_access,
        servers=server_group,
        agents=agent_group,
        bastion_instance_type=bastion_type,
        nlb=nlb,
        cni=cni,
        cni_ports=cni_ports,
        etcd_metrics=parse_bool(servers.extra_config.get("etcd-expose-metrics"), "servers.config.etcd-expose-metrics"),
        node_ports=node_ports,
        node_port_cidrs=node_port_cidrs,
        registration_port=distribution.registration_port,
        api_port=distribution.api_port,
        cluster_name=_cluster_name(raw.get("name")),
        tags=_tags(raw.get("tags")),
    )
    _check_pod_networks(settings, servers, distribution)
    _check_nlb_sources(settings)
    return settings


# --- small parsers --------------------------------------------------------------------------------


def _object(value: Any, key: str, fix: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected an object, got {type(value).__name__}", fix)
    return value


def _string_list(value: Any, key: str, fix: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list", fix)
    return value


def _network(value: Any, key: str) -> ipaddress.IPv4Network:
    fix = "give an IPv4 network such as 203.0.113.0/24"
    if not isinstance(value, str):
        raise ConfigError(key, f"{value!r} is not a CIDR", fix)
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise ConfigError(key, f"{value!r} is not a CIDR", fix) from None
        raise ConfigError(key, f"{value!r} has host bits set", f"did you mean {loose}?") from None
    if network.version != 4:
        raise ConfigError(key, f"{value} is IPv6", "give an IPv4 network: the VPC and the NLB are IPv4-only")
    return network


def _cidr_list(value: Any, key: str, allow_world: bool) -> tuple[str, ...]:
    items = _string_list(value, key, "give a list of IPv4 CIDRs such as [203.0.113.0/24]")
    networks = []
    for index, item in enumerate(items):
        network = _network(item, f"{key}[{index}]")
        if network.prefixlen == 0 and not allow_world:
            raise ConfigError(
                f"{key}[{index}]", f"{network} opens SSH and the Kubernetes API to the whole internet",
                "give the addresses of your office, VPN or CI runners",
            )
        networks.append(str(network))
    if len(set(networks)) != len(networks):
        raise ConfigError(key, "a CIDR is listed twice", "list each network once")
    return tuple(networks)


# --- sections -------------------------------------------------------------------------------------


def _zones(value: Any, server_count: int) -> tuple[str, ...]:
    fix = "list the zones explicitly, e.g. zones: [us-east-1a, us-east-1b, us-east-1c]"
    if not value:
        raise ConfigError("aws.zones", "missing", fix)
    zones = _string_list(value, "aws.zones", fix)
    regions = set()
    for index, zone in enumerate(zones):
        match = _ZONE.fullmatch(zone) if isinstance(zone, str) else None
        if not match:
            raise ConfigError(f"aws.zones[{index}]", f"{zone!r} is not an availability zone name", fix)
        regions.add(match.group(1))
    if len(regions) > 1:
        raise ConfigError("aws.zones", f"the zones span several regions ({', '.join(sorted(regions))})",
                          "list zones of the region in aws:region only")
    if len(set(zones)) != len(zones):
        raise ConfigError("aws.zones", "a zone is listed twice", "list each zone once")
    # Servers go round-robin over the zones: with three or more zones no single zone holds a majority
    # of the etcd members for 3, 5 or 7 servers, so losing one zone keeps quorum.
    if server_count > 1 and len(zones) < 3:
        raise ConfigError(
            "aws.zones",
            f"{server_count} servers in {len(zones)} zone(s): losing the zone with most servers loses etcd quorum",
            "list at least three zones",
        )
    return tuple(zones)


def check_zones_in_region(zones: Sequence[str], region: Optional[str]) -> None:
    """The zones must lie in the provider's region (`aws:region`), or the first subnet fails mid-update."""
    if not region:
        return
    for index, zone in enumerate(zones):
        match = _ZONE.fullmatch(zone)
        if match and match.group(1) != region:
            raise ConfigError(f"aws.zones[{index}]", f"{zone} is not in aws:region {region}",
                              f"list zones of {region} (such as {region}a), or change aws:region")


def _admin_cidrs(value: Any, ssh_access: str) -> tuple[str, ...]:
    cidrs = _cidr_list(value, "aws.adminCidrs", allow_world=False)
    if not cidrs:
        where = "the nodes" if ssh_access == "public" else "the bastion"
        raise ConfigError(
            "aws.adminCidrs",
            f"missing, and SSH to {where} is public: there is no safe default (never 0.0.0.0/0)",
            "list the networks allowed to SSH and reach the API, e.g. adminCidrs: [203.0.113.0/24]",
        )
    return cidrs


def _vpc(value: Any, zone_count: int, ssh_access: str) -> VpcSettings:
    fix = ("set vpc: {cidr, publicSubnetCidrs, privateSubnetCidrs} for a new VPC, "
           "or vpc: {id, cidr, publicSubnetIds, privateSubnetIds} for an existing one")
    if value is None:
        raise ConfigError("aws.vpc", "missing", fix)
    value = _object(value, "aws.vpc", fix)
    existing = "id" in value
    allowed = {"id", "cidr", "publicSubnetIds", "privateSubnetIds"} if existing else {
        "cidr", "publicSubnetCidrs", "privateSubnetCidrs", "natGateways"}
    reject_unknown_fields(value, "aws.vpc", frozenset(allowed))
    if value.get("cidr") is None:
        raise ConfigError("aws.vpc.cidr", "missing",
                          "give the VPC's IPv4 CIDR, e.g. 10.0.0.0/16 (it is checked against the pod network)")
    vpc_cidr = _network(value.get("cidr"), "aws.vpc.cidr")
    if not 16 <= vpc_cidr.prefixlen <= 28:
        raise ConfigError("aws.vpc.cidr", f"/{vpc_cidr.prefixlen} is outside what AWS allows",
                          "use a prefix from /16 to /28")
    private_needed = ssh_access == "bastion"

    if existing:
        vpc_id = value["id"]
        if not isinstance(vpc_id, str) or not _VPC_ID.fullmatch(vpc_id):
            raise ConfigError("aws.vpc.id", f"{vpc_id!r} is not a VPC id", "give an id such as vpc-0123456789abcdef0")
        public_ids = _subnet_ids(value.get("publicSubnetIds"), "aws.vpc.publicSubnetIds", zone_count, True)
        private_ids = _subnet_ids(value.get("privateSubnetIds"), "aws.vpc.privateSubnetIds", zone_count, private_needed)
        if set(public_ids) & set(private_ids):
            raise ConfigError("aws.vpc.privateSubnetIds", "a subnet is listed as both public and private",
                              "give distinct subnets")
        return VpcSettings(cidr=str(vpc_cidr), id=vpc_id, public_subnet_ids=public_ids, private_subnet_ids=private_ids)

    public = _subnet_cidrs(value.get("publicSubnetCidrs"), "aws.vpc.publicSubnetCidrs", zone_count, vpc_cidr, True)
    private = _subnet_cidrs(
        value.get("privateSubnetCidrs"), "aws.vpc.privateSubnetCidrs", zone_count, vpc_cidr, private_needed
    )
    subnets = [(f"aws.vpc.publicSubnetCidrs[{i}]", n) for i, n in enumerate(public)] + [
        (f"aws.vpc.privateSubnetCidrs[{i}]", n) for i, n in enumerate(private)]
    for i, (key_a, net_a) in enumerate(subnets):
        for key_b, net_b in subnets[i + 1:]:
            if net_a.overlaps(net_b):
                raise ConfigError(key_b, f"{net_b} overlaps {key_a} ({net_a})", "give every subnet its own range")
    nat = parse_choice(value.get("natGateways", "perZone"), NAT_GATEWAYS, "aws.vpc.natGateways")
    return VpcSettings(
        cidr=str(vpc_cidr),
        public_subnet_cidrs=tuple(map(str, public)),
        private_subnet_cidrs=tuple(map(str, private)),
        nat_gateways=nat,
    )


def _check_subnet_count(count: int, key: str, zone_count: int, required: bool, what: str) -> None:
    if count == 0 and not required:
        return
    if count != zone_count:
        problem = (f"{count} subnet(s) for {zone_count} zone(s)" if count
                   else f"missing, and {what} are needed")
        raise ConfigError(key, problem, f"list exactly one subnet per zone ({zone_count}), in the order of aws.zones")


def _subnet_cidrs(
    value: Any, key: str, zone_count: int, vpc: ipaddress.IPv4Network, required: bool
) -> list[ipaddress.IPv4Network]:
    items = _string_list(value, key, "give a list of IPv4 CIDRs, one per zone")
    what = "public subnets (bastion, NAT, internet-facing NLB)" if "public" in key else "private subnets (ssh: bastion)"
    _check_subnet_count(len(items), key, zone_count, required, what)
    networks = []
    for index, item in enumerate(items):
        network = _network(item, f"{key}[{index}]")
        if not network.subnet_of(vpc):
            raise ConfigError(f"{key}[{index}]", f"{network} is outside the VPC {vpc}", "give a range inside aws.vpc.cidr")
        if not 16 <= network.prefixlen <= 28:
            raise ConfigError(f"{key}[{index}]", f"/{network.prefixlen} is outside what AWS allows",
                              "use a prefix from /16 to /28")
        networks.append(network)
    return networks


def _subnet_ids(value: Any, key: str, zone_count: int, required: bool) -> tuple[str, ...]:
    items = _string_list(value, key, "give a list of subnet ids, one per zone")
    what = "public subnets (bastion, NAT, internet-facing NLB)" if "public" in key else "private subnets (ssh: bastion)"
    _check_subnet_count(len(items), key, zone_count, required, what)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not _SUBNET_ID.fullmatch(item):
            raise ConfigError(f"{key}[{index}]", f"{item!r} is not a subnet id",
                              "give an id such as subnet-0123456789abcdef0")
    if len(set(items)) != len(items):
        raise ConfigError(key, "a subnet is listed twice", "give one subnet per zone")
    return tuple(items)


def _ami(value: Any) -> AmiSettings:
    fix = ("pin the image: ami: {id: ami-0123456789abcdef0}, or ami: {name: <exact AMI name>, "
           "owner: <12-digit account>} (Canonical is 099720109477)")
    if value is None:
        raise ConfigError("aws.ami", "missing", fix)
    value = _object(value, "aws.ami", fix)
    reject_unknown_fields(value, "aws.ami", frozenset({"id", "name", "owner"}))
    if "id" in value:
        if "name" in value or "owner" in value:
            raise ConfigError("aws.ami", "both an id and a name are given", "give either id, or name with owner")
        ami_id = value["id"]
        if not isinstance(ami_id, str) or not _AMI_ID.fullmatch(ami_id):
            raise ConfigError("aws.ami.id", f"{ami_id!r} is not an AMI id", fix)
        return AmiSettings(id=ami_id)
    name, owner = value.get("name"), value.get("owner")
    if not isinstance(name, str) or not 3 <= len(name) <= 128:
        raise ConfigError("aws.ami.name", "missing or not an AMI name", fix)
    if "*" in name or "?" in name:
        # A pattern matches tomorrow's image too: a new release would replace every node on the next `up`.
        raise ConfigError("aws.ami.name", f"{name!r} is a pattern, so the image would change with new releases",
                          "give the exact name of one image, or its id")
    if not isinstance(owner, str) or not _ACCOUNT_ID.fullmatch(owner):
        raise ConfigError(
            "aws.ami.owner", f"{owner!r} is not a 12-digit account id",
            "give the publisher's account id (an alias such as aws-marketplace lets any seller's image match)",
        )
    return AmiSettings(name=name, owner=owner)


def _public_key(value: Any) -> str:
    fix = "set aws.publicKey to the contents of your ~/.ssh/id_ed25519.pub (ed25519 or RSA)"
    if isinstance(value, str) and "PRIVATE KEY" in value:
        # Never echo it: this is a secret in the wrong place.
        raise ConfigError("aws.publicKey", "this is a private key", f"{fix}; keep the private key in kube-ha:sshPrivateKey")
    if not isinstance(value, str) or not _PUBLIC_KEY.fullmatch(value.strip()):
        raise ConfigError("aws.publicKey", "missing or not an OpenSSH public key", fix)
    return value.strip()


def _instance_type(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _INSTANCE_TYPE.fullmatch(value):
        raise ConfigError(key, f"{value!r} is not an EC2 instance type", "give a type such as t3.medium or m7i.xlarge")
    return value


def _machine_group(group: NodeGroupConfig, key: str, role: str, default_volume: int) -> MachineGroupSettings:
    raw = group.raw
    unknown = sorted(set(raw) - GROUP_KEYS)
    if unknown:
        fix = ("provider aws creates the machines: give count and instanceType instead of hosts"
               if unknown[0] == "hosts" else f"use only: {', '.join(sorted(GROUP_KEYS))}")
        raise ConfigError(f"{key}.{unknown[0]}", "unknown field for provider aws", fix)
    instance_type = None
    if group.count:
        if raw.get("instanceType") is None:
            raise ConfigError(f"{key}.instanceType", "missing", "give an EC2 instance type such as t3.medium")
        instance_type = _instance_type(raw["instanceType"], f"{key}.instanceType")
    volume = parse_int(raw.get("rootVolumeSize"), f"{key}.rootVolumeSize", default_volume, 8, 16384)
    return MachineGroupSettings(role=role, count=group.count, instance_type=instance_type, root_volume_size=volume)


def _bastion(value: Any, ssh_access: str) -> Optional[str]:
    if value is None:
        return DEFAULT_BASTION_INSTANCE_TYPE if ssh_access == "bastion" else None
    if ssh_access != "bastion":
        raise ConfigError("aws.bastion", "set, but aws.ssh is not bastion", "set aws.ssh: bastion, or remove bastion")
    value = _object(value, "aws.bastion", "set bastion: {instanceType: t3.micro}")
    reject_unknown_fields(value, "aws.bastion", frozenset({"instanceType"}))
    return _instance_type(value.get("instanceType", DEFAULT_BASTION_INSTANCE_TYPE), "aws.bastion.instanceType")


def _nlb(registration: RegistrationConfig) -> Optional[NlbSettings]:
    raw = registration.raw
    if registration.mode != "nlb":
        for key in sorted(NLB_KEYS - {"mode"}):
            if key in raw:
                raise ConfigError(f"registration.{key}", "applies to mode nlb only", "remove it, or set mode: nlb")
        return None
    reject_unknown_fields(raw, "registration", NLB_KEYS)
    dns_name = raw.get("dnsName")
    if dns_name is not None and (not isinstance(dns_name, str) or not _HOSTNAME.fullmatch(dns_name.rstrip("."))):
        raise ConfigError("registration.dnsName", f"{dns_name!r} is not a DNS name", "give a name such as k8s.example.com")
    zone_id = raw.get("zoneId")
    if zone_id is not None:
        if not isinstance(zone_id, str) or not _ZONE_ID.fullmatch(zone_id):
            raise ConfigError("registration.zoneId", f"{zone_id!r} is not a Route 53 hosted zone id",
                              "give an id such as Z0123456789ABCDEFGHIJ")
        if dns_name is None:
            raise ConfigError("registration.zoneId", "given without dnsName", "set registration.dnsName, the record to create")
    return NlbSettings(
        internal=parse_bool(raw.get("internal"), "registration.internal"),
        dns_name=dns_name.rstrip(".") if dns_name else None,
        zone_id=zone_id,
    )


def _cni(value: Any) -> tuple[str, tuple[PortRule, ...]]:
    names = ["canal"] if value is None else (
        [v.strip() for v in value.split(",")] if isinstance(value, str) else value if isinstance(value, list) else None)
    if not names or not all(isinstance(n, str) for n in names):
        raise ConfigError("servers.config.cni", f"{value!r} is not a CNI name", f"use one of: {', '.join(CNI_PORTS)}")
    chosen = [n for n in names if n != "multus"] or ["canal"]
    cni = chosen[0]
    if cni == "none":
        pulumi.log.warn("kube-ha:servers.config.cni: none; the security groups open no pod-network ports: "
                        "add your CNI's rules to the exported security groups.")
        return cni, ()
    if cni not in CNI_PORTS:
        raise ConfigError("servers.config.cni", f"{cni!r} has no known security-group ports",
                          f"use one of: {', '.join([*CNI_PORTS, *CNI_WITHOUT_PORTS])}")
    return cni, CNI_PORTS[cni]


def _cluster_name(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not _CLUSTER_NAME.fullmatch(value):
        raise ConfigError("aws.name", f"{value!r} is not a usable cluster name",
                          "use up to 32 lowercase letters, digits and '-'")
    return value


def _tags(value: Any) -> Mapping[str, str]:
    if value is None:
        return {}
    value = _object(value, "aws.tags", "give tags as an object of strings, e.g. {team: platform}")
    for key, item in value.items():
        if not isinstance(item, str) or not 1 <= len(key) <= 128 or len(item) > 256:
            raise ConfigError(f"aws.tags.{key}", "not a tag AWS accepts",
                              "use keys of 1-128 and string values of at most 256 characters")
        if key.lower().startswith("aws:") or key.startswith("kube-ha:") or key == "Name":
            raise ConfigError(f"aws.tags.{key}", "a reserved tag (aws:, kube-ha: and Name are set for you)",
                              "choose another key")
    return dict(value)


# --- cross-checks ---------------------------------------------------------------------------------


def _check_pod_networks(settings: AwsSettings, servers: NodeGroupConfig, distribution: Distribution) -> None:
    """A machine or client address inside the pod or service network would be routed into the overlay."""
    ranges = [("aws.vpc.cidr", settings.vpc.cidr)]
    ranges += [(f"aws.adminCidrs[{i}]", c) for i, c in enumerate(settings.admin_cidrs)]
    ranges += [(f"aws.nodePortCidrs[{i}]", c) for i, c in enumerate(settings.node_port_cidrs)]
    pod_networks = cluster_networks(servers, distribution)
    for key, cidr in ranges:
        network = ipaddress.ip_network(cidr)
        if network.prefixlen == 0:
            continue
        for pod_network in pod_networks:
            if pod_network.network.version == network.version and pod_network.network.overlaps(network):
                raise ConfigError(
                    key, f"{network} overlaps the {pod_network.label} {pod_network.network}",
                    f"choose a range outside {pod_network.network}, "
                    f"or move the pod network with servers.config.{pod_network.config_key}",
                )


def _check_nlb_sources(settings: AwsSettings) -> None:
    """An internet-facing NLB sees nodes by their public addresses, which no security group reference matches."""
    nlb = settings.nlb
    if nlb is None or nlb.internal:
        return
    if settings.ssh_access == "bastion" and settings.vpc.existing:
        raise ConfigError(
            "registration.internal",
            "private nodes in an existing VPC reach an internet-facing NLB through NAT addresses this program "
            "does not know",
            "set registration.internal: true (admins reach the API over a VPN or the bastion)",
        )
    if settings.ssh_access == "public":
        rules = len(settings.admin_cidrs) + 2 * settings.node_count
        if rules > SECURITY_GROUP_RULE_QUOTA:
            raise ConfigError(
                "registration.internal",
                f"an internet-facing NLB must allow each public node's address: {rules} rules, over the "
                f"{SECURITY_GROUP_RULE_QUOTA} a security group holds",
                "set registration.internal: true, or aws.ssh: bastion (private nodes leave through NAT gateways)",
            )
