"""Provider aws: every stacks/ file evaluates, the same config registers the same inputs twice, and the
node pools stay provider-agnostic."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.aws_mocks import INSTANCE, NLB, aws_config, run_aws, run_aws_stack, shared_stack
from tests.harness import ROOT, unwrap

AWS_STACKS = ("dev", "staging", "prod")


def node_configs(result) -> dict[str, dict]:
    return {c.name: yaml.safe_load(unwrap(c.inputs["stdin"])) for c in result.mocks.commands("rke2-node.sh")}


def snapshot(result) -> list[tuple]:
    return sorted((r.type, r.name, repr(unwrap(r.inputs))) for r in result.mocks.records)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_every_aws_stack_evaluates(stack):
    result = shared_stack(stack)
    assert result.warnings == []
    assert result.exports["nlbDnsName"] == result.exports["registrationAddress"]
    assert "kubeconfig" in result.secret_exports
    assert len(result.mocks.commands("rke2-node.sh")) == len(result.exports["servers"]) + len(result.exports["agents"])


def test_dev_is_one_small_server_behind_the_nlb():
    result = shared_stack("dev")
    assert [(r.name, r.inputs["instanceType"]) for r in result.mocks.of_type(INSTANCE)] == [("aws-servers-1", "t3.medium")]
    (lb,) = result.mocks.of_type(NLB)
    assert lb.inputs["internal"] is False
    assert result.exports["agents"] == []


def test_staging_is_three_servers_with_every_role():
    result = shared_stack("staging")
    configs = node_configs(result)
    assert sorted(configs) == ["servers-server-1", "servers-server-2", "servers-server-3"]
    assert all("node-taint" not in c for c in configs.values())


def test_prod_is_three_tainted_servers_and_agents_behind_an_internal_nlb_and_a_bastion():
    result = shared_stack("prod")
    configs = node_configs(result)
    servers = [c for n, c in configs.items() if n.startswith("servers-")]
    agents = [c for n, c in configs.items() if n.startswith("agents-")]
    assert len(servers) == 3 and len(agents) == 3
    assert all(c["node-taint"] == ["CriticalAddonsOnly=true:NoExecute"] for c in servers)
    (lb,) = result.mocks.of_type(NLB)
    assert lb.inputs["internal"] is True
    assert "bastionAddress" in result.exports


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_two_runs_register_identical_resources(stack):
    assert snapshot(run_aws_stack(stack)) == snapshot(run_aws_stack(stack))


def test_two_runs_of_a_larger_cluster_register_identical_resources():
    config = aws_config(agents={"count": 12, "instanceType": "t3.medium"}, aws={"ssh": "bastion"})
    assert snapshot(run_aws(config)) == snapshot(run_aws(config))


@pytest.mark.parametrize("module", ["server_pool.py", "agent_pool.py", "nodes.py", "cluster_check.py"])
def test_the_pools_know_nothing_of_aws(module):
    tree = ast.parse((ROOT / "components" / module).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not [name for name in imported if "aws" in name], module


def test_aws_components_follow_the_house_style():
    """One component per file, each registering its outputs last."""
    for path in sorted(Path(ROOT / "components" / "aws").glob("*.py")):
        tree = ast.parse(path.read_text())
        components = [n for n in tree.body if isinstance(n, ast.ClassDef)
                      and any(getattr(b, "attr", None) == "ComponentResource" for b in n.bases)]
        assert len(components) <= 1, path.name
        for component in components:
            init = next(f for f in component.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
            last = init.body[-1]
            assert isinstance(last, ast.Expr) and getattr(last.value.func, "attr", None) == "register_outputs", path.name
