"""Lab scenario 6: the registration address left out of the servers' certificate names (forced).

The program always puts the registration address first in every server's `tls-san`; no stack config
can leave it out. To force it out honestly, this test runs the unchanged program with a patched
distribution: an RKE2 subclass whose node_config drops the VIP from `tls-san` and changes nothing
else. The first server then serves a certificate without the VIP, and the agent's join through
https://<VIP>:9345 must fail with the certificate error. That proves the RKE2 stand-in checks the
name the way RKE2 (Go's crypto/x509) does, so scenario 1's passing joins through the VIP mean the
program's SANs are right.
"""

from __future__ import annotations

from unittest import mock

import pytest
from cryptography import x509

import components.config
from components.rke2 import RKE2
from tests.lab.engine import CommandFailed
from tests.lab.hosts import Topology
from tests.lab.stack import LabStack

pytestmark = pytest.mark.lab


class RKE2WithoutRegistrationSan(RKE2):
    """RKE2 exactly, except that the registration address never reaches `tls-san`."""

    def __init__(self, registration_address: str):
        self.registration_address = registration_address

    def node_config(self, **kwargs):
        kwargs["tls_san"] = [san for san in kwargs["tls_san"] if san != self.registration_address]
        return super().node_config(**kwargs)


@pytest.fixture(scope="module")
def stack():
    with LabStack.checked(Topology(lbs=2, servers=1, agents=1)) as lab_stack:
        yield lab_stack


def test_join_fails_with_the_certificate_error_when_the_vip_is_not_a_san(stack):
    vip = stack.lab.vip
    patched = RKE2WithoutRegistrationSan(vip)
    with mock.patch.object(components.config, "get_distribution", lambda name: patched):
        with pytest.raises(CommandFailed) as failure:
            stack.apply()

    # The first server came up; its serving certificate lacks the VIP.
    assert stack.engine.last.event("servers-server-1").status == 0
    config = stack.host("server-1").read("/etc/rancher/rke2/config.yaml")
    assert vip not in config
    pem = stack.host("server-1").path("/var/lib/rancher/rke2/server/tls/serving-kube-apiserver.crt").read_bytes()
    sans = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert vip not in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}

    # The agent's join through the VIP failed, naming the node, with Go's x509 wording in its log.
    assert failure.value.node == "agent-1" and failure.value.resource == "agents-agent-1"
    assert "rke2-agent failed" in str(failure.value)
    log = stack.host("agent-1").unit_log("rke2-agent")
    assert "x509: certificate is valid for" in log and f"not {vip}" in log, log[-2000:]
    assert stack.host("agent-1").unit_state("rke2-agent") == "failed"
