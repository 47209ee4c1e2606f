"""The scripts shipped to nodes: shellcheck-clean, strict mode, and the read-only ones run for real.

The scripts that install and start services are run for real in the lab (tests/lab).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components.remote import SCRIPTS_DIR

SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))


def test_there_are_scripts():
    assert {p.name for p in SCRIPTS} >= {
        "rke2-node.sh", "haproxy.sh", "keepalived.sh", "read-secret-file.sh", "wait-nodes-ready.sh"
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_uses_strict_mode(script: Path):
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines


def test_scripts_are_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is missing in CI: .ci/run must install it")
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(
        [shellcheck, "--severity=style", *map(str, SCRIPTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def run_script(name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPTS_DIR / name), *args], capture_output=True, text=True, timeout=timeout
    )


def test_read_secret_file_prints_the_file(tmp_path: Path):
    secret = tmp_path / "node-token"
    secret.write_text("K10abc::server:xyz\n")
    result = run_script("read-secret-file.sh", str(secret), "5")
    assert result.returncode == 0
    assert result.stdout == "K10abc::server:xyz\n"
    assert "K10abc" not in result.stderr


def test_read_secret_file_gives_up_after_its_timeout(tmp_path: Path):
    start = time.monotonic()
    result = run_script("read-secret-file.sh", str(tmp_path / "never"), "1")
    assert result.returncode == 1
    assert "did not appear within 1s" in result.stderr
    assert time.monotonic() - start < 10


KUBECTL_TEST_DOUBLE = """#!/usr/bin/env bash
# Test double of `kubectl get nodes --no-headers`: prints the listing in $NODES_FILE.
set -euo pipefail
[ "$1" = --kubeconfig ] && [ -f "$2" ] || { echo "kubeconfig missing" >&2; exit 1; }
# A request without a timeout could hang the script past its own deadline.
[ "$3 $4 $5 $6" = "--request-timeout=10s get nodes --no-headers" ] || { echo "unexpected arguments: $*" >&2; exit 2; }
cat "$NODES_FILE"
"""


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch) -> tuple[Path, Path, Path]:
    binary = tmp_path / "kubectl"
    binary.write_text(KUBECTL_TEST_DOUBLE)
    binary.chmod(0o755)
    kubeconfig = tmp_path / "rke2.yaml"
    kubeconfig.write_text("apiVersion: v1\n")
    nodes = tmp_path / "nodes"
    monkeypatch.setenv("NODES_FILE", str(nodes))
    return binary, kubeconfig, nodes


def test_wait_nodes_ready_passes_when_every_node_is_ready(kubectl):
    binary, kubeconfig, nodes = kubectl
    nodes.write_text(
        "s1   Ready    control-plane,etcd,master   5m   v1.33.5+rke2r1\n"
        "a1   Ready    <none>                      1m   v1.33.5+rke2r1\n"
    )
    result = run_script("wait-nodes-ready.sh", str(binary), str(kubeconfig), "5", "s1", "a1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["s1", "a1"]


def test_wait_nodes_ready_fails_listing_the_nodes_that_are_not(kubectl):
    binary, kubeconfig, nodes = kubectl
    nodes.write_text(
        "s1   Ready      control-plane,etcd,master   5m   v1.33.5+rke2r1\n"
        "a1   NotReady   <none>                      1m   v1.33.5+rke2r1\n"
        "a10  Ready      <none>                      1m   v1.33.5+rke2r1\n"
    )
    start = time.monotonic()
    result = run_script("wait-nodes-ready.sh", str(binary), str(kubeconfig), "1", "s1", "a1", "a2")
    assert result.returncode == 1
    assert "not Ready after 1s: a1(NotReady) a2(absent)" in result.stderr
    assert time.monotonic() - start < 10


def test_wait_nodes_ready_sees_a_node_become_ready(kubectl, tmp_path: Path):
    binary, kubeconfig, nodes = kubectl
    nodes.write_text("s1   NotReady   control-plane   5m   v1\n")
    process = subprocess.Popen(
        ["bash", str(SCRIPTS_DIR / "wait-nodes-ready.sh"), str(binary), str(kubeconfig), "20", "s1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1)
        nodes.write_text("s1   Ready   control-plane   5m   v1\n")
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 0, err
    assert out.split() == ["s1"]


def test_wait_nodes_ready_needs_names(kubectl):
    binary, kubeconfig, _ = kubectl
    result = run_script("wait-nodes-ready.sh", str(binary), str(kubeconfig), "5")
    assert result.returncode == 2
    assert "no node names" in result.stderr


def test_rke2_node_refuses_an_unknown_role():
    result = run_script("rke2-node.sh", "worker", "v1.33.5+rke2r1", "https://get.rke2.io", "10")
    assert result.returncode == 2
    assert "unknown role 'worker'" in result.stderr
