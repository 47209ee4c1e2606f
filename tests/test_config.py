"""The validation catalogue: every bad configuration fails before any resource, naming the key and the fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config import ConfigError, parse_config
from tests.harness import RecordingMocks, TEST_KEEPALIVED_PASSWORD, TEST_SSH_KEY, run_program

VALID: dict[str, Any] = {
    "provider": "hosts",
    "version": "v1.33.5+rke2r1",
    "registration": {
        "mode": "haproxy-keepalived",
        "address": "10.0.0.100",
        "hosts": [{"address": "10.0.0.11"}, {"address": "10.0.0.12"}],
    },
    "servers": {
        "taint": True,
        "hosts": [
            {"address": "10.0.0.21", "name": "s1"},
            {"address": "10.0.0.22", "name": "s2"},
            {"address": "10.0.0.23", "name": "s3"},
        ],
    },
    "agents": {"hosts": [{"address": "10.0.0.31", "name": "a1"}]},
    "sshPrivateKey": TEST_SSH_KEY,
    "keepalivedPassword": TEST_KEEPALIVED_PASSWORD,
}


def config_with(**changes: Any) -> dict[str, Any]:
    """VALID with top-level keys replaced; a value of None removes the key."""
    config = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def servers(*addresses: str, **extra: Any) -> dict[str, Any]:
    return {"hosts": [{"address": a} for a in addresses], **extra}


def parse(config: dict[str, Any]):
    return parse_config(config.get)


def assert_rejected(config: dict[str, Any], key: str, *fragments: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(config)
    error = caught.value
    assert error.key == key, str(error)
    message = str(error)
    assert message.startswith(f"kube-ha:{key}:"), message
    assert "Fix:" in message, message
    for fragment in fragments:
        assert fragment in message, message
    return error


def test_valid_config_parses(mocks: RecordingMocks):
    config = parse(VALID)
    assert config.servers.count == 3
    assert [h.name for h in config.servers.hosts] == ["s1", "s2", "s3"]
    assert config.registration.lb_hosts[1].address == "10.0.0.12"
    assert config.install_url == "https://get.rke2.io"


@pytest.mark.parametrize("count", [0, 2, 4, 6, 8])
def test_even_or_zero_server_count(mocks, count):
    addresses = [f"10.0.0.{21 + i}" for i in range(count)]
    assert_rejected(config_with(servers=servers(*addresses)), "servers", "1, 3, 5 or 7")


def test_more_than_five_servers_warns(mocks):
    warnings: list[str] = []
    import pulumi

    original = pulumi.log.warn
    pulumi.log.warn = lambda message, *a, **k: warnings.append(message)
    try:
        parse(config_with(servers=servers(*[f"10.0.0.{21 + i}" for i in range(7)])))
    finally:
        pulumi.log.warn = original
    assert any("7 servers" in w for w in warnings)


def test_duplicate_address(mocks):
    config = config_with(agents=servers("10.0.0.22"))
    assert_rejected(config, "agents.hosts[0]", "10.0.0.22", "servers.hosts[1]")


def test_duplicate_name(mocks):
    config = config_with(agents={"hosts": [{"address": "10.0.0.31", "name": "s2"}]})
    assert_rejected(config, "agents.hosts[0]", "'s2'")


@pytest.mark.parametrize("address", ["10.0.0.300", "not an address", "", "10.0.0"])
def test_malformed_address(mocks, address):
    assert_rejected(config_with(agents=servers(address)), "agents.hosts[0].address")


def test_malformed_internal_address(mocks):
    config = config_with(agents={"hosts": [{"address": "a1.example.com", "internalAddress": "a1.internal"}]})
    assert_rejected(config, "agents.hosts[0].internalAddress", "IP address")


def test_bad_node_name(mocks):
    config = config_with(agents={"hosts": [{"address": "10.0.0.31", "name": "Agent_1"}]})
    assert_rejected(config, "agents.hosts[0].name", "lowercase")


@pytest.mark.parametrize("version", [None, ""])
def test_missing_version(mocks, version):
    assert_rejected(config_with(version=version), "version", "pinned release")


@pytest.mark.parametrize("version", ["latest", "stable", "v1.33", "1.33.5+rke2r1", "v1.33.5+k3s1"])
def test_unpinned_version(mocks, version):
    assert_rejected(config_with(version=version), "version", "v1.33.5+rke2r1")


def test_missing_ssh_key(mocks):
    assert_rejected(config_with(sshPrivateKey=None), "sshPrivateKey", "pulumi config set --secret")


def test_missing_servers(mocks):
    assert_rejected(config_with(servers=None), "servers", "missing")


def test_unknown_provider(mocks):
    assert_rejected(config_with(provider="gcp"), "provider", "hosts, aws")


def test_unknown_registration_mode(mocks):
    config = config_with(registration={"mode": "round-robin", "address": "k8s.example.com"})
    assert_rejected(config, "registration.mode", "address, haproxy-keepalived")


def test_nlb_mode_needs_aws(mocks):
    assert_rejected(config_with(registration={"mode": "nlb"}), "registration.mode", "provider hosts")


def test_missing_registration(mocks):
    assert_rejected(config_with(registration=None), "registration", "mode")


@pytest.mark.parametrize("lb_count", [0, 1, 3])
def test_haproxy_keepalived_needs_two_hosts(mocks, lb_count):
    registration = copy.deepcopy(VALID["registration"])
    registration["hosts"] = [{"address": f"10.0.0.{11 + i}"} for i in range(lb_count)]
    assert_rejected(config_with(registration=registration), "registration.hosts", "exactly two")


@pytest.mark.parametrize("vip", ["10.0.0.21", "10.0.0.11", "10.0.0.31"])
def test_vip_equal_to_a_machine(mocks, vip):
    registration = {**VALID["registration"], "address": vip}
    assert_rejected(config_with(registration=registration), "registration.address", vip)


def test_vip_must_be_an_ip(mocks):
    registration = {**VALID["registration"], "address": "vip.example.com"}
    assert_rejected(config_with(registration=registration), "registration.address", "IP address")


def test_bad_interface(mocks):
    registration = {**VALID["registration"], "interface": "eth0; reboot"}
    assert_rejected(config_with(registration=registration), "registration.interface")


def test_missing_keepalived_password(mocks):
    assert_rejected(config_with(keepalivedPassword=None), "keepalivedPassword", "1-8")


def test_keepalived_password_too_long(mocks):
    error = assert_rejected(config_with(keepalivedPassword="far-too-long-password"), "keepalivedPassword")
    assert "far-too-long-password" not in str(error)


@pytest.mark.parametrize(
    "token",
    ["has$dollar-0123456789", "back\\slash-0123456789", "quote'd-0123456789", 'dq"-0123456789', "sp ace-0123456789"],
)
def test_token_with_characters_that_break_yaml_or_shells(mocks, token):
    error = assert_rejected(config_with(token=token), "token", "letters, digits")
    assert token not in str(error), "a rejected token must not be echoed"


def test_short_token(mocks):
    assert_rejected(config_with(token="short"), "token", "16")


@pytest.mark.parametrize("taint", ["yes", 1])
def test_bad_taint_flag(mocks, taint):
    config = config_with(servers={**VALID["servers"], "taint": taint})
    assert_rejected(config, "servers.taint", "true or false")


def test_taint_on_agents(mocks):
    config = config_with(agents={**VALID["agents"], "taint": True})
    assert_rejected(config, "agents.taint", "only servers")


@pytest.mark.parametrize("taint", ["dedicated", "key=value:Sometimes", "=x:NoSchedule"])
def test_bad_node_taint(mocks, taint):
    config = config_with(servers={**VALID["servers"], "config": {"node-taint": [taint]}})
    assert_rejected(config, "servers.config.node-taint", "key=value:Effect")


@pytest.mark.parametrize("key", ["server", "token", "tls-san", "node-name"])
def test_managed_key_in_extra_config(mocks, key):
    config = config_with(agents={**VALID["agents"], "config": {key: "x"}})
    assert_rejected(config, f"agents.config.{key}", "sets this key itself")


@pytest.mark.parametrize("key", ["cluster-cidr", "service-cidr"])
def test_cidr_that_is_not_a_cidr(mocks, key):
    config = config_with(servers={**VALID["servers"], "config": {key: "10.42.0.0/33"}})
    assert_rejected(config, f"servers.config.{key}", "10.42.0.0/16")


def test_cidr_with_host_bits(mocks):
    config = config_with(servers={**VALID["servers"], "config": {"cluster-cidr": "10.42.0.1/16"}})
    assert_rejected(config, "servers.config.cluster-cidr", "not a CIDR")


def test_cluster_and_service_cidr_overlap(mocks):
    extra = {"cluster-cidr": "10.42.0.0/16", "service-cidr": "10.42.128.0/20"}
    config = config_with(servers={**VALID["servers"], "config": extra})
    assert_rejected(config, "servers.config.service-cidr", "overlaps")


def test_configured_cidr_contains_a_node(mocks):
    config = config_with(servers={**VALID["servers"], "config": {"cluster-cidr": "10.0.0.0/16"}})
    assert_rejected(config, "servers.config.cluster-cidr", "10.0.0.21")


def test_default_cidr_contains_a_node(mocks):
    """Seed 003: RKE2's default 10.42.0.0/16 and 10.43.0.0/16 collide with machines in those ranges."""
    config = config_with(agents=servers("10.43.1.5"))
    assert_rejected(config, "servers.config.service-cidr", "10.43.1.5", "no machine uses")


def test_dual_stack_cidrs_accepted(mocks):
    extra = {"cluster-cidr": "10.42.0.0/16,fd00:42::/56", "service-cidr": "10.43.0.0/16,fd00:43::/112"}
    config = parse(config_with(servers={**VALID["servers"], "config": extra}))
    assert config.servers.extra_config["cluster-cidr"].endswith("fd00:42::/56")


def test_bad_install_url(mocks):
    assert_rejected(config_with(installUrl="get.rke2.io"), "installUrl", "https://")


@pytest.mark.parametrize("value", ["0", "soon", 10])
def test_bad_ready_timeout(mocks, value):
    assert_rejected(config_with(readyTimeoutSeconds=value), "readyTimeoutSeconds", "30 to 7200")


def test_unsupported_distribution(mocks):
    assert_rejected(config_with(distribution="k3s"), "distribution", "rke2")


def test_bad_tls_san(mocks):
    assert_rejected(config_with(tlsSan=["ok.example.com", "bad name"]), "tlsSan[1]")


def test_unknown_host_field(mocks):
    config = config_with(agents={"hosts": [{"address": "10.0.0.31", "role": "worker"}]})
    assert_rejected(config, "agents.hosts[0]", "'role'")


def test_bad_ssh_user(mocks):
    assert_rejected(config_with(ssh={"user": "root; rm"}), "ssh.user")


def test_bad_ssh_port(mocks):
    assert_rejected(config_with(ssh={"port": 70000}), "ssh.port", "65535")


def test_single_server_with_address_mode_is_valid(mocks):
    config = config_with(
        registration={"mode": "address", "address": "k8s.example.com"},
        servers=servers("10.0.0.21"),
        agents=None,
        keepalivedPassword=None,
    )
    parsed = parse(config)
    assert parsed.servers.count == 1 and parsed.agents.count == 0
    assert parsed.keepalived_password is None


def test_bad_config_registers_no_resource():
    """The whole program stops on bad config before anything exists."""
    mocks = RecordingMocks()
    with pytest.raises(ConfigError):
        run_program(config_with(servers=servers("10.0.0.21", "10.0.0.22")), mocks=mocks)
    assert mocks.records == []


def test_config_error_is_a_run_error():
    """The Pulumi CLI prints a RunError's message alone, without a traceback."""
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


@pytest.mark.parametrize("key", ["sshPrivateKey", "token", "keepalivedPassword"])
def test_secret_stored_in_plain_text_is_refused(mocks, key):
    config = config_with(token="given-token-0123456789")
    with pytest.raises(ConfigError) as caught:
        parse_config(config.get, is_secret=lambda k: k != key)
    assert caught.value.key == key
    assert f"pulumi config set --secret kube-ha:{key}" in str(caught.value)
    assert config[key] not in str(caught.value)


def test_plain_text_secret_in_the_stack_stops_the_program():
    mocks = RecordingMocks()
    with pytest.raises(ConfigError, match="kube-ha:sshPrivateKey: the value is stored in plain text"):
        run_program(VALID, mocks=mocks, secret_keys=("keepalivedPassword",))
    assert mocks.records == []


def test_empty_optional_secrets_from_project_defaults_are_accepted(mocks):
    """Pulumi.yaml defaults token and keepalivedPassword to "" (plain): that means unset, not a leak."""
    config = config_with(token="", registration={"mode": "address", "address": "k8s.example.com"},
                         keepalivedPassword="")
    parsed = parse_config(config.get, is_secret=lambda k: k == "sshPrivateKey")
    assert parsed.token is None and parsed.keepalived_password is None


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"ssh": {"usr": "ubuntu"}}, "ssh.usr"),
        ({"ssh": {"bastion": {"address": "10.9.0.1", "prot": 2222}}}, "ssh.bastion.prot"),
        ({"agents": {"host": [{"address": "10.0.0.31"}]}}, "agents.host"),
        ({"agents": {"hosts": [], "taint": True}}, "agents.taint"),
        ({"servers": {**VALID["servers"], "taints": True}}, "servers.taints"),
        ({"registration": {"mode": "address", "address": "k8s.example.com", "hosts": []}}, "registration.hosts"),
        ({"registration": {**VALID["registration"], "vip": "10.0.0.100"}}, "registration.vip"),
    ],
)
def test_misspelt_or_misplaced_field_is_refused(mocks, changes, key):
    """A field the program does not know would otherwise be ignored silently."""
    error = assert_rejected(config_with(**changes), key)
    assert "unknown field" in str(error) or "only servers" in str(error)


def test_bad_bastion_user(mocks):
    config = config_with(ssh={"bastion": {"address": "10.9.0.1", "user": "Root User"}})
    assert_rejected(config, "ssh.bastion.user", "login name")


def test_load_balancer_host_given_by_name_needs_an_internal_ip(mocks):
    registration = {**VALID["registration"], "hosts": [{"address": "lb1.example.com"}, {"address": "10.0.0.12"}]}
    assert_rejected(config_with(registration=registration), "registration.hosts[0]", "IPv4", "internalAddress")
    registration["hosts"][0]["internalAddress"] = "10.0.0.11"
    assert parse(config_with(registration=registration)).registration.lb_hosts[0].cluster_address == "10.0.0.11"


def test_ipv6_virtual_ip_is_refused(mocks):
    registration = {**VALID["registration"], "address": "fd00::100"}
    assert_rejected(config_with(registration=registration), "registration.address", "IPv4")


@pytest.mark.parametrize("key", ["data-dir", "write-kubeconfig"])
def test_keys_that_move_files_the_program_reads_are_refused(mocks, key):
    config = config_with(servers={**VALID["servers"], "config": {key: "/srv/elsewhere"}})
    assert_rejected(config, f"servers.config.{key}", "sets this key itself")


def test_release_candidate_is_a_pinned_version(mocks):
    assert parse(config_with(version="v1.34.1-rc1+rke2r1")).version == "v1.34.1-rc1+rke2r1"
