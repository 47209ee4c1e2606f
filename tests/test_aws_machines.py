"""Provider aws: the instances, the network they live in, and how the pools reach them over SSH."""

from __future__ import annotations

import pytest
import yaml

from tests.harness import recording_dependencies
from tests.aws_mocks import (
    EIP, GET_AMI, INSTANCE, KEY_PAIR, NAT_GATEWAY, SUBNET, TEST_PUBLIC_KEY, aws_config,
    run_aws, run_aws_stack, shared_default, shared_stack,
)
from tests.harness import unwrap


def instances(result) -> dict[str, object]:
    return {r.name: r for r in result.mocks.of_type(INSTANCE)}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_instance_requires_imdsv2_and_encrypts_its_root_volume(stack):
    found = instances(shared_stack(stack))
    assert found
    for name, record in found.items():
        metadata = record.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required", name
        assert metadata["httpEndpoint"] == "enabled", name
        assert record.inputs["rootBlockDevice"]["encrypted"] is True, name


def test_instances_follow_the_configured_types_sizes_and_zones():
    result = run_aws(aws_config(
        servers={"count": 3, "instanceType": "m7i.xlarge", "rootVolumeSize": 100},
        agents={"count": 4, "instanceType": "c7i.large"},
        aws={"rootVolumeSize": 60},
    ))
    found = instances(result)
    for i in (1, 2, 3):
        server = found[f"aws-servers-{i}"].inputs
        assert server["instanceType"] == "m7i.xlarge"
        assert server["rootBlockDevice"]["volumeSize"] == 100
        assert server["rootBlockDevice"]["volumeType"] == "gp3"
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    for i in (1, 2, 3, 4):
        agent = found[f"aws-agents-{i}"].inputs
        assert agent["instanceType"] == "c7i.large"
        assert agent["rootBlockDevice"]["volumeSize"] == 60
        # Round-robin over the zones, so a zone outage takes at most a third of each role.
        assert agent["subnetId"] == f"aws-network-public-{zones[(i - 1) % 3]}-id"
    assert [found[f"aws-servers-{i}"].inputs["subnetId"] for i in (1, 2, 3)] == [
        f"aws-network-public-{z}-id" for z in zones]


def test_instances_are_tagged_with_cluster_role_and_stack():
    result = shared_stack("prod")
    for name, record in instances(result).items():
        tags = record.inputs["tags"]
        role = {"aws-servers": "server", "aws-agents": "agent", "aws-bastion": "bastion"}[name.rsplit("-", 1)[0]]
        assert tags["kube-ha:cluster"] == "prod"
        assert tags["kube-ha:role"] == role
        assert tags["kube-ha:stack"] == "prod"
        assert tags["environment"] == "production"
        assert record.inputs["rootBlockDevice"]["tags"]["kube-ha:cluster"] == "prod"


def test_the_default_cluster_name_is_project_and_stack():
    tags = instances(shared_default())["aws-servers-1"].inputs["tags"]
    assert tags["kube-ha:cluster"] == "kube-ha-test" and tags["Name"] == "kube-ha-test-server-1"


def test_one_key_pair_from_the_configured_public_key_on_every_instance():
    result = shared_default()
    (key,) = result.mocks.of_type(KEY_PAIR)
    assert key.inputs["publicKey"] == TEST_PUBLIC_KEY
    assert {r.inputs["keyName"] for r in instances(result).values()} == {key.outputs["keyName"]}


def test_an_ami_id_is_used_as_given_without_a_lookup():
    result = shared_default()
    assert {r.inputs["ami"] for r in instances(result).values()} == {"ami-0123456789abcdef0"}
    assert [c for c in result.mocks.calls if c.token == GET_AMI] == []


def test_an_ami_name_is_looked_up_exactly_with_its_owner_and_never_most_recent():
    result = shared_stack("dev")
    (call,) = [c for c in result.mocks.calls if c.token == GET_AMI]
    assert call.args["owners"] == ["099720109477"]
    assert call.args["filters"] == [
        {"name": "name", "values": ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240423"]}]
    assert not call.args.get("mostRecent")
    assert call.args["includeDeprecated"] is True
    image = {r.inputs["ami"] for r in instances(result).values()}
    assert len(image) == 1 and image.pop().startswith("ami-")


def test_public_nodes_are_reached_at_their_public_address():
    result = shared_default()
    found = instances(result)
    for command in result.mocks.commands():
        connection = unwrap(command.inputs["connection"])
        assert "proxy" not in connection or connection["proxy"] is None
        owners = [r for r in found.values() if r.outputs["publicIp"] == connection["host"]]
        assert owners, f"{command.name} connects to {connection['host']}, no instance's public address"
        assert connection["user"] == "ubuntu"
    assert found["aws-servers-1"].inputs["associatePublicIpAddress"] is True


def test_private_nodes_are_reached_through_the_bastion():
    result = shared_stack("prod")
    found = instances(result)
    (bastion_ip,) = [r.outputs["publicIp"] for r in result.mocks.of_type(EIP) if r.name == "aws-bastion-eip"]
    hosts = {}
    for command in result.mocks.commands("rke2-node.sh"):
        connection = unwrap(command.inputs["connection"])
        assert connection["proxy"]["host"] == bastion_ip
        assert connection["proxy"]["user"] == "ubuntu"
        hosts[command.name] = connection["host"]
    assert hosts == {
        **{f"servers-server-{i}": found[f"aws-servers-{i}"].outputs["privateIp"] for i in (1, 2, 3)},
        **{f"agents-agent-{i}": found[f"aws-agents-{i}"].outputs["privateIp"] for i in (1, 2, 3)},
    }
    for i in (1, 2, 3):
        assert found[f"aws-servers-{i}"].inputs["associatePublicIpAddress"] is False
    bastion = found["aws-bastion-instance"].inputs
    assert bastion["instanceType"] == "t3.micro"
    assert bastion["subnetId"] == "aws-network-public-eu-west-1a-id"
    assert bastion["vpcSecurityGroupIds"] == ["aws-security-bastion-id"]
    assert result.exports["bastionAddress"] == bastion_ip


def test_nodes_advertise_their_private_address():
    result = shared_default()
    found = instances(result)
    for command in result.mocks.commands("rke2-node.sh"):
        config = yaml.safe_load(unwrap(command.inputs["stdin"]))
        role, index = command.name.split("-")[0], command.name.rsplit("-", 1)[1]
        assert config["node-ip"] == found[f"aws-{role}-{index}"].outputs["privateIp"]
        assert "node-name" not in config  # the EC2 hostname


def test_installs_wait_for_the_instance_the_security_rules_and_the_internet_route():
    with recording_dependencies() as deps:
        result = run_aws_stack("prod")
    rules = {r.name for r in result.mocks.records if r.type.startswith("aws:vpc/securityGroup") and r.name.startswith("aws-security")}
    routes = {r.name for r in result.mocks.records if r.type == "aws:ec2/route:Route"}
    for install, instance in (("servers-server-1", "aws-servers-1"), ("agents-agent-3", "aws-agents-3")):
        assert instance in deps[install]
        assert rules <= deps[install]
        assert routes <= deps[install]


def test_outputs_name_every_instance():
    result = shared_stack("prod")
    assert result.exports["serverInstanceIds"] == [f"aws-servers-{i}-id" for i in (1, 2, 3)]
    assert result.exports["agentInstanceIds"] == [f"aws-agents-{i}-id" for i in (1, 2, 3)]
    assert result.exports["vpcId"] == "aws-network-vpc-id"
    assert [s["address"] for s in result.exports["servers"]] == [
        instances(result)[f"aws-servers-{i}"].outputs["privateIp"] for i in (1, 2, 3)]


# --- network --------------------------------------------------------------------------------------


def test_a_new_vpc_has_a_public_and_a_private_subnet_per_zone():
    result = shared_stack("prod")
    subnets = {r.name: r.inputs for r in result.mocks.of_type(SUBNET)}
    zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert set(subnets) == {f"aws-network-{kind}-{z}" for kind in ("public", "private") for z in zones}
    for zone in zones:
        assert subnets[f"aws-network-public-{zone}"]["availabilityZone"] == zone
        assert subnets[f"aws-network-private-{zone}"]["mapPublicIpOnLaunch"] is False
    (vpc,) = result.mocks.of_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.30.0.0/16" and vpc.inputs["enableDnsHostnames"] is True


def test_private_nodes_get_a_nat_gateway_per_zone_or_one():
    per_zone = shared_stack("prod")
    assert len(per_zone.mocks.of_type(NAT_GATEWAY)) == 3
    routes = {r.name: r.inputs for r in per_zone.mocks.of_type("aws:ec2/route:Route")}
    assert routes["aws-network-private-eu-west-1b-internet"]["natGatewayId"] == "aws-network-nat-eu-west-1b-id"

    config = aws_config(aws={"ssh": "bastion"})
    config["aws"]["vpc"]["natGateways"] = "one"
    one = run_aws(config)
    assert [n.name for n in one.mocks.of_type(NAT_GATEWAY)] == ["aws-network-nat-us-east-1a"]
    routes = [r.inputs["natGatewayId"] for r in one.mocks.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert routes == ["aws-network-nat-us-east-1a-id"] * 3


def test_public_nodes_need_no_nat_gateway():
    assert shared_stack("dev").mocks.of_type(NAT_GATEWAY) == []


def test_an_existing_vpc_is_used_as_is():
    vpc = {
        "id": "vpc-0123456789abcdef0",
        "cidr": "10.0.0.0/16",
        "publicSubnetIds": ["subnet-00000000000000001", "subnet-00000000000000002", "subnet-00000000000000003"],
        "privateSubnetIds": ["subnet-00000000000000004", "subnet-00000000000000005", "subnet-00000000000000006"],
    }
    result = run_aws(aws_config(aws={"vpc": vpc, "ssh": "bastion"}, registration={"mode": "nlb", "internal": True}))
    assert not [r for r in result.mocks.records if r.type.startswith("aws:ec2/") and r.type.split(":")[1] in (
        "ec2/vpc", "ec2/subnet", "ec2/natGateway", "ec2/internetGateway", "ec2/routeTable")]
    found = instances(result)
    assert found["aws-servers-2"].inputs["subnetId"] == "subnet-00000000000000005"
    assert found["aws-bastion-instance"].inputs["subnetId"] == "subnet-00000000000000001"
    groups = result.mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert {g.inputs["vpcId"] for g in groups} == {"vpc-0123456789abcdef0"}
    assert result.exports["vpcId"] == "vpc-0123456789abcdef0"
