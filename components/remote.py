"""How every component reaches a machine: SSH connections and commands that run the shipped scripts."""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import pulumi
from pulumi_command import remote

from components.config import SshConfig

SCRIPTS_DIR = Path(__file__).parent / "scripts"


@dataclass(frozen=True)
class NodeTarget:
    """A machine to configure, whichever provider made it: the pools never learn where it came from."""

    resource_name: str
    """Stable suffix for the Pulumi names of this machine's resources."""
    connection: remote.ConnectionArgs
    """How to reach the machine over SSH."""
    cluster_address: pulumi.Input[str]
    """Address other machines and the load balancer use to reach it."""
    node_name: Optional[str] = None
    """Kubernetes node name; the machine's hostname when None."""
    node_ip: Optional[pulumi.Input[str]] = None
    """Address the node advertises (RKE2 `node-ip`); the distribution's choice when None."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources that must exist before anything runs on the machine (a cloud instance)."""


def connection_args(host: pulumi.Input[str], ssh: SshConfig) -> remote.ConnectionArgs:
    """SSH connection to `host` with the stack's user, port, key and optional bastion."""
    proxy = None
    if ssh.bastion is not None:
        proxy = remote.ProxyConnectionArgs(
            host=ssh.bastion.address,
            port=ssh.bastion.port,
            user=ssh.bastion.user,
            private_key=ssh.private_key,
        )
    return remote.ConnectionArgs(
        host=host,
        port=ssh.port,
        user=ssh.user,
        private_key=ssh.private_key,
        proxy=proxy,
        # A machine that was just created may need a minute before sshd answers.
        dial_error_limit=30,
        per_dial_timeout=10,
    )


def script_command(script: str, args: Sequence[pulumi.Input[str]], sudo: bool) -> pulumi.Output[str]:
    """A command line that runs one of the shipped scripts with `args`.

    The script travels as the argument of `bash -c` so that the remote command's standard input stays
    free for the secret payload; arguments are never secret.
    """
    body = (SCRIPTS_DIR / script).read_text()
    runner = ["sudo", "-n", "bash"] if sudo else ["bash"]

    def render(values: list[str]) -> str:
        return " ".join([*runner, "-c", shlex.quote(body), shlex.quote(script), *map(shlex.quote, values)])

    return pulumi.Output.all(*args).apply(render)


def content_hash(content: pulumi.Input[str]) -> pulumi.Output[str]:
    """SHA-256 of a rendered file: a trigger that re-runs a command when the file changes.

    Kept secret because the file may hold a secret, and a hash invites guessing short ones.
    """
    return pulumi.Output.secret(
        pulumi.Output.from_input(content).apply(lambda text: hashlib.sha256(text.encode()).hexdigest())
    )
