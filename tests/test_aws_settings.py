"""Provider aws: every configuration mistake stops the program with a ConfigError naming the key and
the fix, before any resource is registered."""

from __future__ import annotations

import pytest

from components.config import ConfigError
from tests.aws_mocks import TEST_PUBLIC_KEY, AwsMocks, aws_config
from tests.harness import TEST_SSH_KEY, run_program

PUBLIC = ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]
PRIVATE = ["10.0.128.0/20", "10.0.144.0/20", "10.0.160.0/20"]


def config_error(config: dict) -> ConfigError:
    """Runs the program, expecting a ConfigError and no registered resource."""
    mocks = AwsMocks()
    with pytest.raises(ConfigError) as caught:
        run_program(config, mocks=mocks)
    assert mocks.records == [], "a resource was registered before the config was rejected"
    return caught.value


def new_vpc(**fields) -> dict:
    vpc = {"cidr": "10.0.0.0/16", "publicSubnetCidrs": PUBLIC, "privateSubnetCidrs": PRIVATE}
    vpc.update(fields)
    return {key: value for key, value in vpc.items() if value is not None}


# --- SSH exposure ---------------------------------------------------------------------------------


def test_public_ssh_without_admin_cidrs_is_refused():
    error = config_error(aws_config(aws={"adminCidrs": None}))
    assert error.key == "aws.adminCidrs"
    assert "SSH to the nodes is public" in str(error)
    assert "0.0.0.0/0" in str(error)


def test_bastion_without_admin_cidrs_is_refused():
    error = config_error(aws_config(aws={"adminCidrs": None, "ssh": "bastion"}))
    assert error.key == "aws.adminCidrs"
    assert "SSH to the bastion is public" in str(error)


def test_empty_admin_cidrs_are_refused():
    assert config_error(aws_config(aws={"adminCidrs": []})).key == "aws.adminCidrs"


@pytest.mark.parametrize("cidr", ["0.0.0.0/0"])
def test_admin_cidr_of_the_whole_internet_is_refused(cidr):
    error = config_error(aws_config(aws={"adminCidrs": [cidr]}))
    assert error.key == "aws.adminCidrs[0]"
    assert "whole internet" in str(error)


def test_admin_cidr_with_host_bits_suggests_the_network():
    error = config_error(aws_config(aws={"adminCidrs": ["203.0.113.7/24"]}))
    assert error.key == "aws.adminCidrs[0]"
    assert "203.0.113.0/24" in str(error)


def test_ipv6_admin_cidr_is_refused():
    error = config_error(aws_config(aws={"adminCidrs": ["2001:db8::/32"]}))
    assert error.key == "aws.adminCidrs[0]" and "IPv6" in str(error)


def test_unknown_ssh_mode_is_refused():
    error = config_error(aws_config(aws={"ssh": "vpn"}))
    assert error.key == "aws.ssh" and "public, bastion" in str(error)


def test_user_bastion_with_provider_aws_is_refused():
    error = config_error(aws_config(ssh={"user": "ubuntu", "bastion": {"address": "198.51.100.9"}}))
    assert error.key == "ssh.bastion"
    assert "aws.ssh: bastion" in str(error)


# --- subnets and zones ----------------------------------------------------------------------------


def test_fewer_public_subnets_than_zones_is_refused():
    error = config_error(aws_config(aws={"vpc": new_vpc(publicSubnetCidrs=PUBLIC[:2])}))
    assert error.key == "aws.vpc.publicSubnetCidrs"
    assert "2 subnet(s) for 3 zone(s)" in str(error)
    assert "one subnet per zone" in str(error)


def test_fewer_private_subnets_than_zones_is_refused():
    error = config_error(aws_config(aws={"vpc": new_vpc(privateSubnetCidrs=PRIVATE[:1]), "ssh": "bastion"}))
    assert error.key == "aws.vpc.privateSubnetCidrs"
    assert "1 subnet(s) for 3 zone(s)" in str(error)


def test_private_nodes_without_private_subnets_are_refused():
    error = config_error(aws_config(aws={"vpc": new_vpc(privateSubnetCidrs=None), "ssh": "bastion"}))
    assert error.key == "aws.vpc.privateSubnetCidrs"
    assert "missing" in str(error)


def test_fewer_existing_subnet_ids_than_zones_is_refused():
    vpc = {"id": "vpc-0123456789abcdef0", "cidr": "10.0.0.0/16",
           "publicSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}
    error = config_error(aws_config(aws={"vpc": vpc}))
    assert error.key == "aws.vpc.publicSubnetIds"
    assert "2 subnet(s) for 3 zone(s)" in str(error)


def test_subnet_outside_the_vpc_is_refused():
    error = config_error(aws_config(aws={"vpc": new_vpc(publicSubnetCidrs=[*PUBLIC[:2], "10.1.0.0/20"])}))
    assert error.key == "aws.vpc.publicSubnetCidrs[2]"
    assert "outside the VPC" in str(error)


def test_overlapping_subnets_are_refused():
    error = config_error(aws_config(aws={"vpc": new_vpc(privateSubnetCidrs=[PUBLIC[0], *PRIVATE[1:]])}))
    assert error.key == "aws.vpc.privateSubnetCidrs[0]"
    assert "overlaps" in str(error)


def test_missing_zones_are_refused():
    error = config_error(aws_config(aws={"zones": None}))
    assert error.key == "aws.zones" and "us-east-1a" in str(error)


def test_three_servers_in_two_zones_are_refused():
    error = config_error(aws_config(aws={
        "zones": ["us-east-1a", "us-east-1b"],
        "vpc": new_vpc(publicSubnetCidrs=PUBLIC[:2], privateSubnetCidrs=PRIVATE[:2]),
    }))
    assert error.key == "aws.zones"
    assert "quorum" in str(error)


def test_zones_of_two_regions_are_refused():
    error = config_error(aws_config(aws={"zones": ["us-east-1a", "us-east-1b", "us-west-2a"]}))
    assert error.key == "aws.zones" and "several regions" in str(error)


def test_a_region_is_not_a_zone():
    error = config_error(aws_config(aws={"zones": ["us-east-1", "us-east-1b", "us-east-1c"]}))
    assert error.key == "aws.zones[0]"


# --- machines -------------------------------------------------------------------------------------


@pytest.mark.parametrize("instance_type", ["t3-large", "large", "T3.LARGE", "t3.huge", "", "m5.xlarge "])
def test_a_string_that_is_not_an_instance_type_is_refused(instance_type):
    error = config_error(aws_config(servers={"count": 3, "instanceType": instance_type}))
    assert error.key == "servers.instanceType"
    assert "is not an EC2 instance type" in str(error)


@pytest.mark.parametrize("instance_type", ["t3.micro", "m7i-flex.large", "c6gn.16xlarge", "u-6tb1.metal",
                                           "r8g.metal-24xl", "mac2-m2pro.metal", "p5.48xlarge"])
def test_real_instance_type_shapes_are_accepted(instance_type):
    from components.aws.settings import _instance_type

    assert _instance_type(instance_type, "servers.instanceType") == instance_type


def test_agent_instance_type_is_checked_too():
    error = config_error(aws_config(agents={"count": 2, "instanceType": "medium"}))
    assert error.key == "agents.instanceType"


def test_missing_server_instance_type_is_refused():
    error = config_error(aws_config(servers={"count": 3}))
    assert error.key == "servers.instanceType" and "missing" in str(error)


@pytest.mark.parametrize("count", [2, 4])
def test_an_even_server_count_is_refused(count):
    error = config_error(aws_config(servers={"count": count, "instanceType": "t3.large"}))
    assert error.key == "servers"
    assert "odd count" in str(error)


def test_hosts_are_refused_for_provider_aws():
    error = config_error(aws_config(servers={"count": 3, "instanceType": "t3.large", "hosts": [{"address": "10.0.0.5"}]}))
    assert error.key == "servers.hosts"
    assert "count and instanceType" in str(error)


def test_root_volume_size_out_of_range_is_refused():
    error = config_error(aws_config(servers={"count": 3, "instanceType": "t3.large", "rootVolumeSize": 4}))
    assert error.key == "servers.rootVolumeSize"


# --- AMI ------------------------------------------------------------------------------------------


def test_a_missing_ami_is_refused():
    error = config_error(aws_config(aws={"ami": None}))
    assert error.key == "aws.ami"
    assert "missing" in str(error) and "pin the image" in str(error)


def test_an_ami_name_pattern_is_refused():
    ami = {"name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", "owner": "099720109477"}
    error = config_error(aws_config(aws={"ami": ami}))
    assert error.key == "aws.ami.name"
    assert "pattern" in str(error)


def test_an_ami_owner_alias_is_refused():
    ami = {"name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240423", "owner": "aws-marketplace"}
    error = config_error(aws_config(aws={"ami": ami}))
    assert error.key == "aws.ami.owner"


def test_an_ami_name_without_owner_is_refused():
    error = config_error(aws_config(aws={"ami": {"name": "my-golden-image-2025-01-01"}}))
    assert error.key == "aws.ami.owner"


def test_a_malformed_ami_id_is_refused():
    error = config_error(aws_config(aws={"ami": {"id": "ami-latest"}}))
    assert error.key == "aws.ami.id"


# --- pod and service networks ---------------------------------------------------------------------


def test_vpc_cidr_overlapping_the_default_cluster_cidr_is_refused():
    vpc = {"cidr": "10.42.0.0/16", "publicSubnetCidrs": ["10.42.0.0/20", "10.42.16.0/20", "10.42.32.0/20"]}
    error = config_error(aws_config(aws={"vpc": vpc}))
    assert error.key == "aws.vpc.cidr"
    assert "cluster-cidr (the RKE2 default) 10.42.0.0/16" in str(error)


def test_vpc_cidr_overlapping_the_default_service_cidr_is_refused():
    vpc = {"cidr": "10.43.0.0/16", "publicSubnetCidrs": ["10.43.0.0/20", "10.43.16.0/20", "10.43.32.0/20"]}
    error = config_error(aws_config(aws={"vpc": vpc}))
    assert error.key == "aws.vpc.cidr"
    assert "service-cidr (the RKE2 default) 10.43.0.0/16" in str(error)


def test_vpc_cidr_overlapping_a_configured_cluster_cidr_is_refused():
    error = config_error(aws_config(servers={
        "count": 3, "instanceType": "t3.large", "config": {"cluster-cidr": "10.0.0.0/14"}}))
    assert error.key == "aws.vpc.cidr"
    assert "servers.config.cluster-cidr 10.0.0.0/14" in str(error)


def test_admin_cidr_overlapping_the_service_cidr_is_refused():
    error = config_error(aws_config(aws={"adminCidrs": ["10.43.10.0/24"]}))
    assert error.key == "aws.adminCidrs[0]"
    assert "10.43.0.0/16" in str(error)


# --- everything else ------------------------------------------------------------------------------


def test_a_missing_aws_object_is_refused():
    config = aws_config()
    del config["aws"]
    assert config_error(config).key == "aws"


def test_an_unknown_aws_field_is_refused():
    error = config_error(aws_config(aws={"region": "us-east-1"}))
    assert error.key == "aws.region"
    assert "unknown field" in str(error)


def test_a_missing_public_key_is_refused():
    error = config_error(aws_config(aws={"publicKey": None}))
    assert error.key == "aws.publicKey"


def test_a_private_key_in_place_of_the_public_key_is_refused_without_echoing_it():
    error = config_error(aws_config(aws={"publicKey": TEST_SSH_KEY}))
    assert error.key == "aws.publicKey"
    assert "private key" in str(error)
    assert "test-double-not-a-key" not in str(error)


def test_nlb_fields_in_address_mode_are_refused():
    error = config_error(aws_config(registration={"mode": "address", "address": "k8s.example.com", "internal": True}))
    assert error.key == "registration.internal"


def test_zone_id_without_dns_name_is_refused():
    error = config_error(aws_config(registration={"mode": "nlb", "zoneId": "Z0123456789ABC"}))
    assert error.key == "registration.zoneId"


def test_an_unknown_cni_is_refused():
    error = config_error(aws_config(servers={"count": 3, "instanceType": "t3.large", "config": {"cni": "weave"}}))
    assert error.key == "servers.config.cni"


def test_node_port_cidrs_need_node_ports():
    error = config_error(aws_config(aws={"nodePortCidrs": ["198.51.100.0/24"]}))
    assert error.key == "aws.nodePortCidrs"


def test_internet_facing_nlb_with_too_many_public_nodes_is_refused():
    # Each public node needs two rules in the NLB's group, which holds 60.
    error = config_error(aws_config(agents={"count": 40, "instanceType": "t3.medium"}))
    assert error.key == "registration.internal"
    assert "set registration.internal: true" in str(error)


def test_many_private_nodes_behind_an_internet_facing_nlb_are_fine():
    from tests.aws_mocks import run_aws

    result = run_aws(aws_config(agents={"count": 40, "instanceType": "t3.medium"}, aws={"ssh": "bastion"}))
    assert len(result.exports["agentInstanceIds"]) == 40


def test_reserved_tags_are_refused():
    error = config_error(aws_config(aws={"tags": {"Name": "mine"}}))
    assert error.key == "aws.tags.Name"


def test_a_valid_config_parses_into_typed_settings():
    from components.config import parse_config

    config = aws_config()
    settings = parse_config(lambda key: config.get(key)).aws
    assert settings.zones == ("us-east-1a", "us-east-1b", "us-east-1c")
    assert settings.public_key == TEST_PUBLIC_KEY
    assert settings.servers.instance_type == "t3.large" and settings.servers.root_volume_size == 50
    assert settings.agents.count == 2 and settings.ssh_access == "public"
    assert settings.nlb is not None and settings.nlb.internal is False
    assert settings.cni == "canal" and [p.label for p in settings.cni_ports] == ["8472-udp", "9099-tcp"]


def test_zones_outside_the_provider_region_are_refused():
    from components.aws.settings import check_zones_in_region

    check_zones_in_region(["eu-west-1a", "eu-west-1b"], "eu-west-1")
    check_zones_in_region(["eu-west-1a"], None)
    with pytest.raises(ConfigError) as caught:
        check_zones_in_region(["eu-west-1a", "us-east-1b"], "eu-west-1")
    assert caught.value.key == "aws.zones[1]"
    assert "not in aws:region eu-west-1" in str(caught.value)
