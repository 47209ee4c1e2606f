"""Runs kube-ha's program under Pulumi mocks and records every registered resource.

Tests (and the lab engine, which subclasses RecordingMocks to run commands over SSH) use this instead
of a Pulumi engine, which cannot be installed here. What mocks prove: which resources the program
registers, with which inputs, in which dependency order. What they do not: that a provider accepts
those inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import runpy
import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional
from unittest import mock

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from components.config import SECRET_KEYS

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "__main__.py"
STACKS = ROOT / "stacks"
COMMAND = "command:remote:Command"

# A syntactically valid key for tests: the program checks the PEM framing only.
TEST_SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ntest-double-not-a-key\n-----END OPENSSH PRIVATE KEY-----\n"
TEST_KEEPALIVED_PASSWORD = "kha-Test"
GENERATED_TOKEN = "K10deadbeefcafe0123456789::server:generated-by-first-server-0001"
SERVER_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: dGVzdC1jYQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    client-certificate-data: dGVzdC1jZXJ0
    client-key-data: dGVzdC1rZXk=
"""


@dataclass
class Record:
    """One resource as the program registered it."""

    type: str
    name: str
    inputs: dict
    outputs: dict = field(default_factory=dict)

    def plain(self, key: str) -> Any:
        """An input with any secret wrapper removed."""
        return unwrap(self.inputs.get(key))

    @property
    def script(self) -> Optional[str]:
        """For a remote command: the shipped script it runs (its name, as passed to `bash -c`)."""
        argv = self.argv
        return argv[argv.index("-c") + 2] if argv and "-c" in argv else None

    @property
    def script_args(self) -> list[str]:
        argv = self.argv
        return argv[argv.index("-c") + 3:] if argv and "-c" in argv else []

    @property
    def argv(self) -> list[str]:
        create = self.plain("create")
        return shlex.split(create) if isinstance(create, str) else []


def unwrap(value: Any) -> Any:
    """Removes Pulumi's secret wrappers, recursively."""
    if rpc.is_rpc_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def plain_strings(value: Any, path: str = "") -> Iterable[tuple[str, str]]:
    """Every string reachable without passing through a secret wrapper, with its path."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from plain_strings(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from plain_strings(item, f"{path}[{index}]")


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that record resources and answer remote commands the way the shipped scripts would."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        record = Record(args.typ, args.name, dict(args.inputs))
        outputs = dict(args.inputs)
        if args.typ == COMMAND:
            outputs.update(self.run_command(record))
        else:
            outputs.update(self.resource_outputs(record))
        record.outputs = outputs
        with self._lock:
            self.records.append(record)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def run_command(self, record: Record) -> dict:
        """stdout/stderr of a remote command; the lab engine overrides this to run it for real.

        Returned plain, as the provider returns them: the engine applies `additionalSecretOutputs`,
        which mocks ignore, so only the program's own `Output.secret` keeps a value secret here.
        """
        script, script_args = record.script, record.script_args
        if script == "rke2-node.sh":
            return {"stdout": (script_args[4] or f"host-{record.name}") + "\n", "stderr": ""}
        if script == "read-secret-file.sh" and script_args[0].endswith("node-token"):
            return {"stdout": GENERATED_TOKEN + "\n", "stderr": ""}
        if script == "read-secret-file.sh":
            return {"stdout": SERVER_KUBECONFIG, "stderr": ""}
        return {"stdout": "", "stderr": ""}

    def resource_outputs(self, record: Record) -> dict:
        """Outputs a cloud provider would compute; extended for AWS types by the AWS tests."""
        return {}

    # Queries used by the tests.
    def of_type(self, typ: str) -> list[Record]:
        return [r for r in self.records if r.type == typ]

    def named(self, name: str) -> Record:
        matches = [r for r in self.records if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name}, found {len(matches)}"
        return matches[0]

    def commands(self, script: Optional[str] = None) -> list[Record]:
        return [r for r in self.of_type(COMMAND) if script is None or r.script == script]


@contextlib.contextmanager
def recording_dependencies() -> Iterator[dict[str, set[str]]]:
    """Within the block, maps each registered resource's name to the names of the resources it waits for."""
    found: dict[str, set[str]] = {}
    original = pulumi_mocks.MockMonitor.RegisterResource

    def register(monitor, request):
        names = {urn.split("::")[-1] for urn in request.dependencies}
        for deps in request.propertyDependencies.values():
            names |= {urn.split("::")[-1] for urn in deps.urns}
        found.setdefault(request.name, set()).update(names)
        return original(monitor, request)

    pulumi_mocks.MockMonitor.RegisterResource = register
    try:
        yield found
    finally:
        pulumi_mocks.MockMonitor.RegisterResource = original


@dataclass
class ProgramResult:
    """What one run of the program registered and exported."""

    mocks: RecordingMocks
    exports: dict[str, Any]
    secret_exports: set[str]
    warnings: list[str]


def stack_config(stack: str) -> dict[str, Any]:
    """A stacks/ file's config, with the project's Pulumi.yaml defaults beneath it, as the CLI merges them."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = {
        key: spec["default"] for key, spec in project.get("config", {}).items() if "default" in spec
    }
    stack_file = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    for key, value in (stack_file.get("config") or {}).items():
        config[key.split(":", 1)[1] if key.startswith("kube-ha:") else key] = value
    return config


def with_test_secrets(config: Mapping[str, Any]) -> dict[str, Any]:
    """The secrets a stack file leaves out, filled with test values."""
    filled = dict(config)
    # Empty is what Pulumi.yaml's defaults give an optional secret that the stack does not set.
    if not filled.get("sshPrivateKey"):
        filled["sshPrivateKey"] = TEST_SSH_KEY
    registration = filled.get("registration") or {}
    if registration.get("mode") == "haproxy-keepalived" and not filled.get("keepalivedPassword"):
        filled["keepalivedPassword"] = TEST_KEEPALIVED_PASSWORD
    return filled


def run_program(
    config: Mapping[str, Any],
    mocks: Optional[RecordingMocks] = None,
    stack: str = "test",
    preview: bool = False,
    secret_keys: Iterable[str] = SECRET_KEYS,
) -> ProgramResult:
    """Runs __main__.py under mocks with `config` (keys without the `kube-ha:` prefix).

    `secret_keys` are stored as secrets, as `pulumi config set --secret` stores them.
    """
    mocks = mocks or RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="kube-ha", stack=stack, preview=preview)
    # Keys of other namespaces (`aws:region`) keep theirs, as in a stack file.
    def full_key(key: str) -> str:
        return key if ":" in key else f"kube-ha:{key}"

    pulumi.runtime.set_all_config(
        {full_key(k): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
        [full_key(k) for k in secret_keys if k in config],
    )
    exports: dict[str, Any] = {}
    warnings: list[str] = []

    def record_export(name: str, value: Any) -> None:
        exports[name] = pulumi.Output.from_input(value)

    def record_warning(message: str, *args: Any, **kwargs: Any) -> None:
        warnings.append(message)

    values: dict[str, Any] = {}
    secret: set[str] = set()

    async def collect() -> None:
        for name, out in exports.items():
            values[name] = await out.future()
            if await out.is_secret():
                secret.add(name)

    @pulumi.runtime.test
    def program():
        with mock.patch.object(pulumi, "export", record_export), mock.patch.object(
            pulumi.log, "warn", record_warning
        ):
            runpy.run_path(str(MAIN), run_name="__main__")
        return asyncio.ensure_future(collect())

    program()
    return ProgramResult(mocks=mocks, exports=values, secret_exports=secret, warnings=warnings)


def run_stack(stack: str, overrides: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> ProgramResult:
    """Runs the program with a stacks/ file's config plus test secrets."""
    config = with_test_secrets({**stack_config(stack), **(overrides or {})})
    if config.get("provider") == "aws" and "mocks" not in kwargs:
        from tests.aws_mocks import AwsMocks  # ids, addresses and DNS names AWS would compute

        kwargs["mocks"] = AwsMocks()
    return run_program(config, stack=stack, **kwargs)
