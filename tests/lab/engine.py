"""The lab engine: kube-ha's program under Pulumi mocks, with every remote command run for real.

What it stands in for
- The Pulumi engine: it runs `__main__.py` (through tests.harness.run_program and Pulumi's mock
  monitor), registers every resource, and resolves outputs so that dependents see real values. Like
  `pulumi up --parallel`, independent commands run at once: Pulumi's mock monitor calls
  `new_resource` from the event loop's default executor only when a resource's inputs and
  `depends_on` are resolved, and this engine gives that loop a large thread pool.
- Pulumi's state: across applies it keeps, per command, a hash of its inputs and its outputs. A
  command whose inputs did not change is not run again and keeps its recorded outputs; a changed one
  runs its `update` (or `create`; a change of `triggers` replaces it and runs `create`); one that left
  the program runs its `delete` if it has one. A failed command is not recorded, so the next apply
  runs it again; after a failure no further command starts, and those running finish (as Pulumi does).
  `rerun_all=True` runs every command again whatever its state: the proof that scripts are idempotent.
- The pulumi-command provider's `command:remote:Command`: it connects with paramiko to
  `connection.host`:`connection.port` as `connection.user` with `connection.privateKey`, checks the host
  key against the lab's, runs `create` (or `update`/`delete`) with `stdin` written and closed, and
  returns stdout (one trailing newline trimmed, as the provider does) and stderr. A non-zero exit
  raises CommandFailed naming the resource, the node and its address, with the remote stderr.

What that leaves unproven
- The real Pulumi engine and CLI: state files, secrets encryption, previews and diffs, `pulumi
  refresh`, resource options the mock monitor ignores (additional_secret_outputs, custom timeouts,
  retain_on_delete, deleted_with), and the exact order and degree of parallelism Pulumi would choose.
- The real pulumi-command provider: its SSH client (Go's x/crypto/ssh), dial retries
  (dialErrorLimit, perDialTimeout), proxies/bastions, `environment` through SetEnv, `logging`, and how
  it trims and stores outputs.
- Anything the hosts do not have: systemd (the lab's systemctl stand-in), and RKE2 itself (the lab
  installs the RKE2 stand-in from tests/lab/standin/).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import io
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import paramiko

from tests.harness import COMMAND, ProgramResult, Record, RecordingMocks, run_program, unwrap
from tests.lab.hosts import exec_over



class CommandFailed(Exception):
    """A remote command exited non-zero (or could not run)."""

    def __init__(self, resource: str, node: str, address: str, status: Optional[int], stderr: str):
        self.resource, self.node, self.address, self.status, self.stderr = resource, node, address, status, stderr
        tail = "\n".join(stderr.strip().splitlines()[-30:])
        what = f"exited with status {status}" if status is not None else "could not run"
        super().__init__(f"{resource} on node {node} ({address}) {what}:\n{tail}")


class ApplyAborted(Exception):
    """A command that was not started because an earlier one failed."""


@dataclass
class CommandEvent:
    """One command of one apply, as the engine ran (or skipped) it."""

    name: str
    node: str
    address: str
    script: Optional[str]
    action: str
    """create, update, replace, delete, rerun (re-run-all mode) or unchanged (not run)."""
    start: float
    """Seconds since the apply started."""
    end: float
    status: Optional[int] = None
    error: Optional[str] = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def ran(self) -> bool:
        return self.action != "unchanged"


@dataclass
class ApplyResult:
    """What one apply did."""

    exports: dict[str, Any]
    secret_exports: set[str]
    events: list[CommandEvent]
    wall: float
    records: list[Record]
    error: Optional[BaseException] = None

    def ran(self) -> list[CommandEvent]:
        return [e for e in self.events if e.ran]

    def event(self, name: str) -> CommandEvent:
        matches = [e for e in self.events if e.name == name]
        assert len(matches) == 1, f"expected one event named {name}, found {len(matches)}"
        return matches[0]


@dataclass
class _StateEntry:
    inputs_hash: str
    triggers_hash: str
    outputs: dict
    inputs: dict
    order: int


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(unwrap(value), sort_keys=True, default=str).encode()).hexdigest()


class LabEngine(RecordingMocks):
    """Runs kube-ha's remote commands on lab hosts over SSH; keeps state between applies."""

    def __init__(
        self,
        node_names: Optional[Mapping[str, str]] = None,
        host_keys: Optional[Mapping[str, str]] = None,
        *,
        parallelism: int = 64,
        command_timeout: float = 900.0,
    ) -> None:
        super().__init__()
        self.node_names = dict(node_names or {})
        """address -> host name, for error messages and events."""
        self.host_keys = dict(host_keys or {})
        """address -> base64 ed25519 host key the engine insists on (empty: accept any)."""
        self.parallelism = parallelism
        self.command_timeout = command_timeout
        self.state: dict[str, _StateEntry] = {}
        self.stdin_filters: dict[str, Callable[[str], str]] = {}
        """Fault injection: resource name -> function of the stdin text (a test's tampering, never the program's)."""
        self.on_command_start: Optional[Callable[[Record], None]] = None
        """Called (in the command's thread) just before a command runs."""
        self._rerun_all = False
        self._replace: set[str] = set()
        self._events: list[CommandEvent] = []
        self._t0 = 0.0
        self._failed: Optional[BaseException] = None
        self._inflight = 0
        self._idle = threading.Condition()
        self._transports: dict[tuple, paramiko.Transport] = {}
        self._transport_locks: dict[tuple, threading.Lock] = {}
        self._registry_lock = threading.Lock()
        self._order = 0

    # ---------------------------------------------------------------------------------------------
    # Applies

    def apply(
        self, config: Mapping[str, Any], *, rerun_all: bool = False, replace: Sequence[str] = (), stack: str = "lab"
    ) -> ApplyResult:
        """One `pulumi up` of the program with `config`. Raises the first command's failure, after every
        command already running has finished. `replace` names commands to run again whatever their
        state, as `pulumi up --replace <urn>` would."""
        self.records = []
        self._replace = set(replace)
        self._events = []
        self._failed = None
        self._rerun_all = rerun_all
        self._t0 = time.monotonic()
        seen_before = dict(self.state)
        loop = _main_loop()
        # asyncio has no getter for the default executor; it is restored after the apply so that code
        # running on this loop later (other tests) gets back what it had.
        previous_executor = getattr(loop, "_default_executor", None)
        _quiet_expected_failures(loop)
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="lab-engine")
        loop.set_default_executor(executor)
        error: Optional[BaseException] = None
        result: Optional[ProgramResult] = None
        try:
            result = run_program(config, mocks=self, stack=stack)
        except BaseException as err:  # noqa: BLE001 - re-raised below, after in-flight commands end
            error = err
        finally:
            self._wait_idle()
            loop._default_executor = previous_executor  # noqa: SLF001 - see above
            executor.shutdown(wait=False)
        if error is None and self._failed is not None:
            error = self._failed
        if error is None:
            registered = {r.name for r in self.records if r.type == COMMAND}
            gone = sorted(
                (entry.order, name) for name, entry in seen_before.items() if name not in registered
            )
            for _, name in reversed(gone):
                self._delete(name, seen_before[name])
        wall = time.monotonic() - self._t0
        outcome = ApplyResult(
            exports=result.exports if result else {},
            secret_exports=result.secret_exports if result else set(),
            events=sorted(self._events, key=lambda e: e.start),
            wall=wall,
            records=list(self.records),
            error=error,
        )
        self.last = outcome
        if error is not None:
            if self._failed is not None and error is not self._failed and not isinstance(error, CommandFailed):
                # The program surfaced a wrapped or secondary error: report the command that failed.
                raise self._failed from error
            raise error
        return outcome

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()

    # ---------------------------------------------------------------------------------------------
    # The mock hook

    def run_command(self, record: Record) -> dict:
        name = record.name
        inputs = dict(record.inputs)
        if name in self.stdin_filters:
            # A tampered stdin is a changed input: the command runs, and a later clean apply sees a change.
            inputs["stdin"] = self.stdin_filters[name](record.plain("stdin") or "")
        inputs_hash = _digest(inputs)
        triggers_hash = _digest(record.inputs.get("triggers"))
        previous = self.state.get(name)
        forced = self._rerun_all or name in self._replace
        if previous is not None and previous.inputs_hash == inputs_hash and not forced:
            now = time.monotonic() - self._t0
            self._add_event(CommandEvent(name, *self._node(record), record.script, "unchanged", now, now))
            return dict(previous.outputs)
        if previous is None:
            action, command = "create", record.plain("create")
        elif name in self._replace:
            action, command = "replace", record.plain("create")
        elif self._rerun_all and previous.inputs_hash == inputs_hash:
            action, command = "rerun", record.plain("update") or record.plain("create")
        elif previous.triggers_hash != triggers_hash:
            action, command = "replace", record.plain("create")
        else:
            action, command = "update", record.plain("update") or record.plain("create")
        outputs = self._execute(record, action, command)
        if action == "replace" and previous is not None:
            # Create before delete, Pulumi's default for a replacement: the old one's `delete`, if any.
            old_delete = Record(COMMAND, name, previous.inputs).plain("delete")
            if old_delete:
                self._execute(Record(COMMAND, name, previous.inputs), "delete", old_delete)
        with self._registry_lock:
            self._order += 1
            self.state[name] = _StateEntry(inputs_hash, triggers_hash, outputs, dict(record.inputs), self._order)
        return outputs

    def _execute(self, record: Record, action: str, command: Optional[str]) -> dict:
        node, address = self._node(record)
        with self._idle:
            if self._failed is not None:
                raise ApplyAborted(f"{record.name} not run: an earlier command failed ({self._failed})")
            self._inflight += 1
        event = None
        try:
            if self.on_command_start is not None:
                # A test's hook (fault injection, gating): before the command's clock starts.
                self.on_command_start(record)
            start = time.monotonic() - self._t0
            event = CommandEvent(record.name, node, address, record.script, action, start, start)
            if not command:
                event.status = 0
                return {"stdout": "", "stderr": ""}
            stdin = record.plain("stdin") or ""
            if record.name in self.stdin_filters:
                stdin = self.stdin_filters[record.name](stdin)
            try:
                status, stdout, stderr = self._ssh(record.plain("connection") or {}, command, stdin)
            except Exception as err:  # noqa: BLE001 - an unreachable host fails the apply like a failed command
                event.error = repr(err)
                failure = CommandFailed(record.name, node, address, None, f"{type(err).__name__}: {err}")
                self._fail(failure)
                raise failure from None
            event.status = status
            if status != 0:
                failure = CommandFailed(record.name, node, address, status, stderr)
                event.error = str(failure)
                self._fail(failure)
                raise failure
            # Plain, as the provider returns them: the Pulumi engine applies additionalSecretOutputs,
            # which mocks never see, so only the program's own Output.secret keeps a value secret here.
            stdout = stdout[:-1] if stdout.endswith("\n") else stdout
            return {"stdout": stdout, "stderr": stderr}
        finally:
            if event is not None:
                event.end = time.monotonic() - self._t0
                self._add_event(event)
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _delete(self, name: str, entry: _StateEntry) -> None:
        record = Record(COMMAND, name, entry.inputs)
        command = record.plain("delete")
        if command:
            self._execute(record, "delete", command)
        with self._registry_lock:
            self.state.pop(name, None)

    def _fail(self, failure: BaseException) -> None:
        with self._idle:
            if self._failed is None:
                self._failed = failure

    def _wait_idle(self, timeout: Optional[float] = None) -> None:
        deadline = time.monotonic() + (timeout or self.command_timeout + 60)
        with self._idle:
            while self._inflight and time.monotonic() < deadline:
                self._idle.wait(0.5)

    def _add_event(self, event: CommandEvent) -> None:
        with self._registry_lock:
            self._events.append(event)

    def _node(self, record: Record) -> tuple[str, str]:
        connection = record.plain("connection") or {}
        address = str(connection.get("host", "?"))
        node = self.node_names.get(address, address)
        if record.script == "rke2-node.sh" and record.script_args[4:] and record.script_args[4]:
            node = record.script_args[4]
        return node, address

    # ---------------------------------------------------------------------------------------------
    # SSH

    def _ssh(self, connection: Mapping[str, Any], command: str, stdin: str) -> tuple[int, str, str]:
        if connection.get("proxy"):
            raise NotImplementedError("the lab engine does not implement SSH proxies (bastions)")
        address = str(connection["host"])
        port = int(connection.get("port") or 22)
        user = str(connection.get("user") or "root")
        key_text = connection.get("privateKey")
        if not key_text:
            raise ValueError("connection.privateKey is empty: the lab engine authenticates with keys only")
        transport = self._transport(address, port, user, key_text)
        return exec_over(transport, command, stdin.encode(), self.command_timeout)

    def _transport(self, address: str, port: int, user: str, key_text: str) -> paramiko.Transport:
        key = (address, port, user, hashlib.sha256(key_text.encode()).hexdigest())
        with self._registry_lock:
            lock = self._transport_locks.setdefault(key, threading.Lock())
        with lock:
            transport = self._transports.get(key)
            if transport is not None and transport.is_active():
                return transport
            pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(key_text)) if "OPENSSH" in key_text else paramiko.RSAKey.from_private_key(io.StringIO(key_text))
            sock = socket.create_connection((address, port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transport = paramiko.Transport(sock)
            transport.start_client(timeout=15)
            server_key = transport.get_remote_server_key()
            expected = self.host_keys.get(address)
            if expected is not None and server_key.get_base64() != expected:
                transport.close()
                raise paramiko.BadHostKeyException(address, server_key, paramiko.Ed25519Key(data=base64.b64decode(expected)))
            transport.auth_publickey(user, pkey)
            transport.set_keepalive(15)
            self._transports[key] = transport
            return transport


def _main_loop() -> asyncio.AbstractEventLoop:
    """The event loop Pulumi's mocks run on (the main thread's), created if needed."""
    try:
        return asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        return loop


def _quiet_expected_failures(loop: asyncio.AbstractEventLoop) -> None:
    """A failed command leaves the outputs of its dependents holding its exception; asyncio would log
    each as 'exception was never retrieved' whenever they are collected, long after the apply. The
    apply raises the failure once; the rest is noise. Installed once per loop, in front of whatever
    handler the loop had, which still gets every other exception."""
    previous = loop.get_exception_handler()
    if getattr(previous, "lab_engine_filter", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if isinstance(context.get("exception"), (CommandFailed, ApplyAborted)):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.lab_engine_filter = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


def commands_shell_lines(records: list[Record]) -> list[str]:
    """Every command line the apply sent, for checks that no secret is on a command line."""
    lines = []
    for record in records:
        if record.type == COMMAND:
            for key in ("create", "update", "delete"):
                value = record.plain(key)
                if isinstance(value, str):
                    lines.append(value)
    return lines

