"""The stack's configuration, loaded once into typed objects and validated before any resource exists.

Every problem is raised as a ConfigError naming the key and the fix, so `pulumi up` stops with one
clear message instead of a half-built cluster. Secrets are wrapped in `pulumi.Output.secret` the
moment they are read and never appear in an error message.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence
from urllib.parse import urlparse

import pulumi
from pulumi.runtime.config import is_config_secret

from components.distribution import Distribution, get_distribution

PROVIDERS = ("hosts", "aws")
REGISTRATION_MODES = {
    "hosts": ("address", "haproxy-keepalived"),
    "aws": ("address", "nlb"),
}
ALLOWED_SERVER_COUNTS = (1, 3, 5, 7)
# etcd replicates every write to every member; past five the added latency outweighs the tolerance gain.
SERVER_COUNT_WARNING_ABOVE = 5

_HOSTNAME_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_HOSTNAME_LABEL}(\.{_HOSTNAME_LABEL})*\.?$")
_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# The RKE2 docs warn that `$`, backslashes and quotes in the token break the YAML and the shells it
# passes through; this set is what survives both unquoted.
_TOKEN = re.compile(r"^[A-Za-z0-9._:@%+=/-]+$")
MIN_TOKEN_LENGTH = 16
# Keepalived's VRRPv2 PASS authentication keeps only the first 8 characters.
_KEEPALIVED_PASSWORD = re.compile(r"^[A-Za-z0-9._+=@%-]{1,8}$")
_INTERFACE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
# key[=value]:Effect, as kubelet's --register-with-taints takes it.
_TAINT = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?(=[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?:(NoSchedule|PreferNoSchedule|NoExecute)$")


class ConfigError(pulumi.RunError):
    """Bad stack configuration. The Pulumi CLI prints a RunError's message alone, without a traceback."""

    def __init__(self, key: str, problem: str, fix: str):
        self.key = key
        super().__init__(f"kube-ha:{key}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class HostConfig:
    """One machine reached over SSH."""

    address: str
    """Address used to reach the machine over SSH: an IP address or a DNS name."""
    name: Optional[str] = None
    """Kubernetes node name; the machine's hostname when absent."""
    internal_address: Optional[str] = None
    """Address the node advertises to the cluster (RKE2 `node-ip`) and the load balancer targets."""

    @property
    def resource_name(self) -> str:
        """A stable Pulumi name: adding or reordering hosts never renames another host's resources."""
        return self.name or re.sub(r"[^A-Za-z0-9]+", "-", self.address).strip("-").lower()

    @property
    def cluster_address(self) -> str:
        """The address other machines use to reach this one inside the cluster network."""
        return self.internal_address or self.address


@dataclass(frozen=True)
class NodeGroupConfig:
    """The servers or the agents."""

    count: int
    """How many nodes; for provider `hosts`, the number of hosts."""
    hosts: tuple[HostConfig, ...] = ()
    """The machines, for provider `hosts`; empty when a cloud provider creates them."""
    taint: bool = False
    """Servers only: taint them `CriticalAddonsOnly=true:NoExecute` so workloads run on agents."""
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    """Further keys of the distribution's node config file, passed through unchanged."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The whole object as configured, for provider-specific fields (instance type, volume size)."""


@dataclass(frozen=True)
class RegistrationConfig:
    """The fixed registration address in front of the servers."""

    mode: str
    """`address` (one the user already has), `haproxy-keepalived` or `nlb`."""
    address: Optional[str] = None
    """The address itself: a DNS name or IP for `address`, the virtual IP for `haproxy-keepalived`."""
    lb_hosts: tuple[HostConfig, ...] = ()
    """The two HAProxy + Keepalived machines."""
    interface: Optional[str] = None
    """Network interface that carries the VIP; found from each LB host's address when absent."""
    virtual_router_id: int = 51
    """VRRP router id, unique among the Keepalived pairs on the same network."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The whole object as configured, for provider-specific fields."""


@dataclass(frozen=True)
class BastionConfig:
    """A jump host for machines without a public address."""

    address: pulumi.Input[str]
    """From config, or the address of a bastion the cloud provider builds."""
    user: str
    port: int


@dataclass(frozen=True)
class SshConfig:
    """How the program reaches every machine."""

    user: str
    """Login user; commands run through `sudo -n` when it is not root."""
    port: int
    private_key: pulumi.Output[str]
    """The private key, a Pulumi secret."""
    bastion: Optional[BastionConfig] = None


@dataclass(frozen=True)
class ClusterConfig:
    """Everything the program needs, validated."""

    provider: str
    distribution: Distribution
    version: str
    install_url: str
    servers: NodeGroupConfig
    agents: NodeGroupConfig
    registration: RegistrationConfig
    ssh: SshConfig
    token: Optional[pulumi.Output[str]]
    """A Pulumi secret, or None to let the first server generate the token."""
    tls_san: tuple[str, ...]
    """Extra names and addresses for the API certificate; the registration address is added to these."""
    keepalived_password: Optional[pulumi.Output[str]]
    ready_timeout_seconds: int
    """How long a node, or the whole cluster, may take to become Ready before the apply fails."""
    aws: Any = None
    """AWS settings (components.aws.settings.AwsSettings) when provider is `aws`."""


ConfigReader = Callable[[str], Any]
SecretCheck = Callable[[str], bool]
SECRET_KEYS = ("sshPrivateKey", "token", "keepalivedPassword")
# Keys whose values are objects or lists in the stack file; every other key is a plain string.
OBJECT_KEYS = frozenset({"servers", "agents", "registration", "ssh", "tlsSan", "aws"})


def load_config() -> ClusterConfig:
    """Reads the `kube-ha:*` stack configuration and validates it."""
    cfg = pulumi.Config("kube-ha")

    def read(key: str) -> Any:
        # Scalars stay strings: a token of digits must not turn into a number.
        if key not in OBJECT_KEYS:
            return cfg.get(key)
        try:
            return cfg.get_object(key)
        except ValueError:
            raise ConfigError(key, "the value is not valid YAML/JSON", "set it as an object in the stack file") from None

    return parse_config(read, lambda key: is_config_secret(f"kube-ha:{key}"))


def parse_config(read: ConfigReader, is_secret: SecretCheck = lambda key: True) -> ClusterConfig:
    """Validates configuration values given by `read(key)`; raises ConfigError on the first problem.

    `is_secret(key)` tells whether the stack stores a key encrypted.
    """
    for key in SECRET_KEYS:
        if read(key) and not is_secret(key):
            raise ConfigError(
                key,
                "the value is stored in plain text in the stack file",
                f"remove it and set it again with `pulumi config set --secret kube-ha:{key} ...`",
            )
    provider = parse_choice(read("provider") or "hosts", PROVIDERS, "provider")
    distribution = _distribution(read("distribution") or "rke2")
    version = _version(read("version"), distribution)
    install_url = _url(read("installUrl") or distribution.default_install_url, "installUrl")
    ready_timeout = parse_int(read("readyTimeoutSeconds"), "readyTimeoutSeconds", default=900, low=30, high=7200)

    servers = _node_group(read("servers"), "servers", provider, required=True)
    agents = _node_group(read("agents"), "agents", provider, required=False)
    if servers.count not in ALLOWED_SERVER_COUNTS:
        raise ConfigError(
            "servers",
            f"{servers.count} servers cannot keep etcd quorum well",
            "use an odd count: 1, 3, 5 or 7 (3 is the usual HA choice)",
        )
    if servers.count > SERVER_COUNT_WARNING_ABOVE:
        pulumi.log.warn(
            f"kube-ha:servers: {servers.count} servers; etcd writes slow down with every member past 5."
        )

    registration = _registration(read("registration"), provider)
    ssh = _ssh(read("ssh"), read("sshPrivateKey"))
    token = _token(read("token"))
    tls_san = _tls_san(read("tlsSan"))
    keepalived_password = _keepalived_password(read("keepalivedPassword"), registration)

    for key, group in (("servers", servers), ("agents", agents)):
        _check_extra_config(group, key, distribution)
    _check_unique_hosts(servers, agents, registration)
    _check_cidrs(servers, agents, registration, distribution)

    aws_settings = None
    if provider == "aws":
        if ssh.bastion is not None:
            raise ConfigError(
                "ssh.bastion", "provider aws builds its own SSH path",
                "remove kube-ha:ssh.bastion; set kube-ha:aws.ssh: bastion to have the program build a bastion",
            )
        from components.aws.settings import parse_aws_settings

        aws_settings = parse_aws_settings(read("aws"), servers, agents, registration, distribution)

    return ClusterConfig(
        provider=provider,
        distribution=distribution,
        version=version,
        install_url=install_url,
        servers=servers,
        agents=agents,
        registration=registration,
        ssh=ssh,
        token=token,
        tls_san=tls_san,
        keepalived_password=keepalived_password,
        ready_timeout_seconds=ready_timeout,
        aws=aws_settings,
    )


def parse_choice(value: Any, allowed: Sequence[str], key: str) -> str:
    """One of `allowed`."""
    if value not in allowed:
        raise ConfigError(key, f"unknown value {value!r}", f"set it to one of: {', '.join(allowed)}")
    return value


def _distribution(name: Any) -> Distribution:
    try:
        return get_distribution(name)
    except KeyError as err:
        raise ConfigError("distribution", f"{name!r} is not supported yet", str(err.args[0])) from None


def _version(value: Any, distribution: Distribution) -> str:
    if not value:
        raise ConfigError(
            "version",
            "no release is pinned",
            f"set a pinned release such as {distribution.example_version} "
            "(`pulumi config set kube-ha:version ...`)",
        )
    if not isinstance(value, str) or not distribution.version_pattern.fullmatch(value):
        raise ConfigError(
            "version",
            f"{value!r} is not a pinned {distribution.name} release (channels such as latest or stable "
            "upgrade the cluster behind your back)",
            f"pin an exact release such as {distribution.example_version}",
        )
    return value


def _url(value: Any, key: str) -> str:
    parsed = urlparse(value) if isinstance(value, str) else None
    if not parsed or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(key, f"{value!r} is not an http(s) URL", "give a full URL such as https://get.rke2.io")
    return value


def parse_int(value: Any, key: str, default: int, low: int, high: int) -> int:
    """A whole number from `low` to `high`, given as a number or a string of digits."""
    if value is None:
        return default
    # Numbers read back from a JSON-encoded config object may be floats such as 50.0.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise ConfigError(key, f"{value!r} is not a whole number", f"give a number from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise ConfigError(key, f"{number} is out of range", f"give a number from {low} to {high}")
    return number


def parse_bool(value: Any, key: str) -> bool:
    """true or false, as a boolean or a string; absent is false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(key, f"{value!r} is not true or false", "set it to true or false")


def _mapping(value: Any, key: str, fix: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected an object, got {type(value).__name__}", fix)
    return value


def reject_unknown_fields(value: Mapping[str, Any], key: str, allowed: Iterable[str]) -> None:
    """A misspelt field would otherwise be ignored silently (`usr:` for `user:` logs in as root)."""
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", "unknown field", f"use only: {', '.join(sorted(allowed))}")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _address(value: Any, key: str, ip_only: bool = False) -> str:
    if isinstance(value, str) and _is_ip(value):
        return value
    if not ip_only and isinstance(value, str) and _HOSTNAME.fullmatch(value) and not value.replace(".", "").isdigit():
        return value
    wanted = "an IP address" if ip_only else "an IP address or DNS name"
    raise ConfigError(key, f"{value!r} is not {wanted}", f"give {wanted}")


def _host(value: Any, key: str) -> HostConfig:
    if isinstance(value, str):
        value = {"address": value}
    value = _mapping(value, key, "give each host as {address: ..., name?: ..., internalAddress?: ...}")
    unknown = set(value) - {"address", "name", "internalAddress"}
    if unknown:
        raise ConfigError(key, f"unknown field {sorted(unknown)[0]!r}", "use only address, name and internalAddress")
    address = _address(value.get("address"), f"{key}.address")
    name = value.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 63 or not _NODE_NAME.fullmatch(name)):
        raise ConfigError(
            f"{key}.name",
            f"{name!r} is not a valid Kubernetes node name",
            "use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
        )
    internal = value.get("internalAddress")
    if internal is not None:
        internal = _address(internal, f"{key}.internalAddress", ip_only=True)
    return HostConfig(address=address, name=name, internal_address=internal)


def _node_group(value: Any, key: str, provider: str, required: bool) -> NodeGroupConfig:
    shape = (
        "{hosts: [{address, name?, internalAddress?}], taint?: bool, config?: {...}}"
        if provider == "hosts"
        else "{count: N, instanceType: ..., taint?: bool, config?: {...}}"
    )
    if value is None and required:
        raise ConfigError(key, "missing", f"set it in the stack file as {shape}")
    value = _mapping(value, key, f"set it as {shape}")
    taint = parse_bool(value.get("taint"), f"{key}.taint")
    if taint and key != "servers":
        raise ConfigError(f"{key}.taint", "only servers take the control-plane taint", "remove taint from agents")
    extra = _mapping(value.get("config"), f"{key}.config", "give extra node config keys as an object")
    if provider == "hosts":
        reject_unknown_fields(value, key, ("hosts", "taint", "config") if key == "servers" else ("hosts", "config"))
        hosts_value = value.get("hosts", [])
        if not isinstance(hosts_value, list):
            raise ConfigError(f"{key}.hosts", "expected a list of hosts", f"set it as {shape}")
        hosts = tuple(_host(h, f"{key}.hosts[{i}]") for i, h in enumerate(hosts_value))
        count = len(hosts)
    else:
        hosts = ()
        count = parse_int(value.get("count", 0 if not required else None), f"{key}.count", 0, 0, 1000)
    if required and count == 0:
        raise ConfigError(key, "no servers", "give 1, 3, 5 or 7 servers; the first one bootstraps the cluster")
    return NodeGroupConfig(count=count, hosts=hosts, taint=taint, extra_config=dict(extra), raw=dict(value))


def _registration(value: Any, provider: str) -> RegistrationConfig:
    modes = REGISTRATION_MODES[provider]
    if value is None:
        raise ConfigError(
            "registration",
            "missing",
            f"set {{mode: ..., address: ...}} with mode one of: {', '.join(modes)}",
        )
    value = _mapping(value, "registration", "set {mode: ..., address: ...}")
    mode = value.get("mode")
    if mode not in modes:
        raise ConfigError(
            "registration.mode",
            f"unknown mode {mode!r} for provider {provider}",
            f"set it to one of: {', '.join(modes)}",
        )
    if mode == "address":
        reject_unknown_fields(value, "registration", ("mode", "address"))
        address = _address(value.get("address"), "registration.address")
        return RegistrationConfig(mode=mode, address=address, raw=dict(value))
    if mode == "haproxy-keepalived":
        reject_unknown_fields(value, "registration", ("mode", "address", "hosts", "interface", "virtualRouterId"))
        vip = _address(value.get("address"), "registration.address", ip_only=True)
        if ipaddress.ip_address(vip).version != 4:
            raise ConfigError(
                "registration.address", "Keepalived's VRRP password authentication works over IPv4 only",
                "give an IPv4 virtual IP",
            )
        hosts_value = value.get("hosts")
        if not isinstance(hosts_value, list) or len(hosts_value) != 2:
            raise ConfigError(
                "registration.hosts",
                "haproxy-keepalived needs exactly two load balancer hosts",
                "list two hosts, e.g. hosts: [{address: 10.0.0.11}, {address: 10.0.0.12}]",
            )
        lb_hosts = tuple(_host(h, f"registration.hosts[{i}]") for i, h in enumerate(hosts_value))
        for index, host in enumerate(lb_hosts):
            # Keepalived's unicast_src_ip and unicast_peer take addresses, not names.
            if not _is_ip(host.cluster_address) or ipaddress.ip_address(host.cluster_address).version != 4:
                raise ConfigError(
                    f"registration.hosts[{index}]", f"{host.cluster_address!r} is not an IPv4 address",
                    "give the load balancer's IPv4 address, or its name as address and the IP as internalAddress",
                )
        interface = value.get("interface")
        if interface is not None and (not isinstance(interface, str) or not _INTERFACE.fullmatch(interface)):
            raise ConfigError("registration.interface", f"{interface!r} is not an interface name", "give e.g. eth0")
        router_id = parse_int(value.get("virtualRouterId"), "registration.virtualRouterId", 51, 1, 255)
        return RegistrationConfig(
            mode=mode,
            address=vip,
            lb_hosts=lb_hosts,
            interface=interface,
            virtual_router_id=router_id,
            raw=dict(value),
        )
    # nlb: the address is the load balancer's DNS name, known only once AWS creates it.
    return RegistrationConfig(mode=mode, raw=dict(value))


def _login_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
        raise ConfigError(key, f"{value!r} is not a login name", "give a user such as root or ubuntu")
    return value


def _ssh(value: Any, private_key: Any) -> SshConfig:
    value = _mapping(value, "ssh", "set {user: root, port: 22, bastion?: {address, user?, port?}}")
    reject_unknown_fields(value, "ssh", ("user", "port", "bastion"))
    user = _login_name(value.get("user", "root"), "ssh.user")
    port = parse_int(value.get("port"), "ssh.port", 22, 1, 65535)
    bastion = None
    if value.get("bastion") is not None:
        b = _mapping(value["bastion"], "ssh.bastion", "set {address, user?, port?}")
        reject_unknown_fields(b, "ssh.bastion", ("address", "user", "port"))
        bastion = BastionConfig(
            address=_address(b.get("address"), "ssh.bastion.address"),
            user=_login_name(b.get("user", user), "ssh.bastion.user"),
            port=parse_int(b.get("port"), "ssh.bastion.port", 22, 1, 65535),
        )
    if not isinstance(private_key, str) or "PRIVATE KEY" not in private_key:
        raise ConfigError(
            "sshPrivateKey",
            "missing or not a PEM/OpenSSH private key",
            "run `pulumi config set --secret kube-ha:sshPrivateKey < ~/.ssh/id_ed25519`",
        )
    return SshConfig(user=user, port=port, private_key=pulumi.Output.secret(private_key), bastion=bastion)


def _token(value: Any) -> Optional[pulumi.Output[str]]:
    if value is None or value == "":
        return None
    # Never echo the value: it is a secret.
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ConfigError(
            "token",
            "the token has characters that break YAML or shell quoting ($, \\, quotes, spaces)",
            "use letters, digits and . _ : @ % + = / - only, or unset it to let the first server generate one",
        )
    if len(value) < MIN_TOKEN_LENGTH:
        raise ConfigError("token", "the token is too short to be a safe shared secret",
                          f"use at least {MIN_TOKEN_LENGTH} characters, or unset it to generate one")
    return pulumi.Output.secret(value)


def _tls_san(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError("tlsSan", "expected a list", "give a list of DNS names and IP addresses")
    return tuple(_address(v, f"tlsSan[{i}]") for i, v in enumerate(value))


def _keepalived_password(value: Any, registration: RegistrationConfig) -> Optional[pulumi.Output[str]]:
    if registration.mode != "haproxy-keepalived":
        return None
    if not isinstance(value, str) or not _KEEPALIVED_PASSWORD.fullmatch(value):
        raise ConfigError(
            "keepalivedPassword",
            "missing or unusable VRRP password (Keepalived uses at most 8 characters, no spaces or quotes)",
            "run `pulumi config set --secret kube-ha:keepalivedPassword <1-8 letters/digits>`",
        )
    return pulumi.Output.secret(value)


def _check_extra_config(group: NodeGroupConfig, key: str, distribution: Distribution) -> None:
    for managed in sorted(distribution.managed_config_keys & set(group.extra_config)):
        raise ConfigError(
            f"{key}.config.{managed}",
            "the program sets this key itself",
            "remove it: use kube-ha:token, kube-ha:tlsSan or the host's name and internalAddress instead",
        )
    taints = group.extra_config.get("node-taint", [])
    for taint in [taints] if isinstance(taints, str) else taints if isinstance(taints, list) else [taints]:
        if not isinstance(taint, str) or not _TAINT.fullmatch(taint):
            raise ConfigError(
                f"{key}.config.node-taint",
                f"{taint!r} is not a taint",
                "write taints as key=value:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute",
            )


def _check_unique_hosts(servers: NodeGroupConfig, agents: NodeGroupConfig, registration: RegistrationConfig) -> None:
    groups = (("servers", servers.hosts), ("agents", agents.hosts), ("registration", registration.lb_hosts))
    seen_addresses: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for key, hosts in groups:
        for index, host in enumerate(hosts):
            where = f"{key}.hosts[{index}]"
            for address in dict.fromkeys((host.address, host.cluster_address)):
                if address in seen_addresses and seen_addresses[address] != where:
                    raise ConfigError(
                        where, f"address {address} is also used by {seen_addresses[address]}",
                        "give every machine its own address",
                    )
                seen_addresses[address] = where
            if host.resource_name in seen_names:
                raise ConfigError(
                    where, f"name {host.resource_name!r} is also used by {seen_names[host.resource_name]}",
                    "give every machine its own name",
                )
            seen_names[host.resource_name] = where
    if registration.mode == "haproxy-keepalived" and registration.address in seen_addresses:
        raise ConfigError(
            "registration.address",
            f"the virtual IP {registration.address} is already the address of {seen_addresses[registration.address]}",
            "choose a free address in the load balancers' subnet for the VIP",
        )


def _parse_cidrs(value: Any, key: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list) or not parts:
        raise ConfigError(key, f"{value!r} is not a CIDR", "give a network such as 10.42.0.0/16")
    networks = []
    for part in parts:
        try:
            networks.append(ipaddress.ip_network(str(part).strip(), strict=True))
        except ValueError:
            raise ConfigError(key, f"{part!r} is not a CIDR", "give a network such as 10.42.0.0/16") from None
    return networks


@dataclass(frozen=True)
class ClusterNetwork:
    """A pod or service network of the cluster, as configured or by the distribution's default."""

    config_key: str
    """The node-config key that sets it (`cluster-cidr`, `service-cidr`)."""
    label: str
    """How messages name it: the configured key, or the default it comes from."""
    network: ipaddress.IPv4Network | ipaddress.IPv6Network


def cluster_networks(servers: NodeGroupConfig, distribution: Distribution) -> list[ClusterNetwork]:
    """The pod and service networks (each may be dual-stack), defaults included."""
    networks = []
    for config_key, default in distribution.default_cidrs.items():
        configured = servers.extra_config.get(config_key)
        label = (
            f"servers.config.{config_key}"
            if configured is not None
            else f"{config_key} (the {distribution.name.upper()} default)"
        )
        value = configured if configured is not None else default
        networks += [
            ClusterNetwork(config_key, label, network)
            for network in _parse_cidrs(value, f"servers.config.{config_key}")
        ]
    return networks


def _check_cidrs(
    servers: NodeGroupConfig,
    agents: NodeGroupConfig,
    registration: RegistrationConfig,
    distribution: Distribution,
) -> None:
    """Pod and service networks must not overlap each other or any machine: routing would break."""
    networks = cluster_networks(servers, distribution)
    for index, first in enumerate(networks):
        for second in networks[index + 1:]:
            if (
                first.config_key != second.config_key
                and first.network.version == second.network.version
                and first.network.overlaps(second.network)
            ):
                raise ConfigError(
                    f"servers.config.{second.config_key}",
                    f"{second.network} overlaps {first.label} {first.network}",
                    "choose networks that do not overlap",
                )
    addresses = [
        (f"{group}.hosts[{i}]", host.cluster_address)
        for group, hosts in (("servers", servers.hosts), ("agents", agents.hosts), ("registration", registration.lb_hosts))
        for i, host in enumerate(hosts)
    ]
    if registration.address and _is_ip(registration.address):
        addresses.append(("registration.address", registration.address))
    for where, address in addresses:
        if not _is_ip(address):
            continue
        ip = ipaddress.ip_address(address)
        for cluster_network in networks:
            if ip.version == cluster_network.network.version and ip in cluster_network.network:
                raise ConfigError(
                    f"servers.config.{cluster_network.config_key}",
                    f"{cluster_network.label} {cluster_network.network} contains {where} ({address})",
                    f"set servers.config.{cluster_network.config_key} to a network that no machine uses",
                )
