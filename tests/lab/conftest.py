"""Fixtures of the lab suite: the checks that decide whether the lab can run here, and the marker.

Lab tests (marked `lab`, registered in pytest.ini) need root and a few Debian packages; anywhere else they skip with the
reason. Each test module builds its own lab (fresh hosts: a scenario starts from an empty lab) and
tears it down in its fixture's finalizer, whatever happens.
"""

from __future__ import annotations

import os
import subprocess
from typing import Optional

import pytest

from tests.lab.hosts import missing_requirements

LAB_BINARIES = ("ssh-keygen", "haproxy", "keepalived", "socat", "killall", "curl", "etcd", "awk", "cmp")


def lab_skip_reason() -> Optional[str]:
    """Why the lab cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, mounts); run the lab suite as root"
    missing = missing_requirements(LAB_BINARIES)
    if missing:
        return (
            f"the lab needs {', '.join(missing)}: apt-get install openssh-server openssh-client haproxy keepalived "
            "socat psmisc curl etcd-server etcd-client iproute2 util-linux python3-yaml python3-cryptography"
        )
    probe = subprocess.run(["/usr/bin/python3", "-c", "import yaml, cryptography"], capture_output=True)
    if probe.returncode != 0:
        return "the lab's hosts run the stand-ins with /usr/bin/python3, which needs python3-yaml and python3-cryptography"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    checked = False
    for item in items:
        if item.get_closest_marker("lab") is None:
            continue
        if not checked:
            reason, checked = lab_skip_reason(), True
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
