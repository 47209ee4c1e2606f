"""A lab stack: the installer server, the stack config generated for the lab, and what tests observe.

`LabStack` ties a `Lab` (hosts), an `InstallerServer` (the RKE2 stand-in's installer over HTTP on
the bridge) and a `LabEngine` (the program run for real) together. Tests and the benchmark use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import importlib
import importlib.util
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

from tests.lab.engine import ApplyResult, LabEngine
from tests.lab.hosts import Host, Lab, Topology

VERSION = "v1.33.5+rke2r1"
KEEPALIVED_PASSWORD = "kh-lab1"
DEFAULT_READY_TIMEOUT = 90


def load_build_installer() -> Callable[..., str]:
    """`build_installer` of the RKE2 stand-in (tests/lab/standin/installer.py).

    KUBE_HA_LAB_INSTALLER=/path/to/file.py points the lab at another file defining build_installer,
    for developing a stand-in; it is never set in CI."""
    override = os.environ.get("KUBE_HA_LAB_INSTALLER")
    if override:
        spec = importlib.util.spec_from_file_location("lab_installer_override", override)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.build_installer
    module = importlib.import_module("tests.lab.standin.installer")
    return module.build_installer


class InstallerServer:
    """Serves the stand-in's installer at http://<bridge address>:<port>/install.sh, from the root
    namespace, to the lab hosts only (it listens on the bridge address)."""

    def __init__(self, lab: Lab, installer_text: str):
        self.lab = lab
        self.body = installer_text.encode()
        self.requests: list[tuple[str, str]] = []
        body, requests = self.body, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                requests.append((self.client_address[0], self.path))
                if self.path.split("?")[0] != "/install.sh":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/x-shellscript")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((lab.gateway, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.lab.gateway}:{self.server.server_address[1]}/install.sh"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def stack_config(
    lab: Lab,
    install_url: str,
    *,
    servers: Sequence[str],
    agents: Sequence[str] = (),
    token: Optional[str] = None,
    ready_timeout: int = DEFAULT_READY_TIMEOUT,
    lbs: Sequence[str] = ("lb-1", "lb-2"),
) -> dict[str, Any]:
    """The stack config for the lab: provider hosts, a Keepalived VIP on the bridge subnet over the two
    LB hosts, tainted servers and agents named after their hosts, the lab's SSH key."""
    config: dict[str, Any] = {
        "provider": "hosts",
        "distribution": "rke2",
        "version": VERSION,
        "installUrl": install_url,
        "readyTimeoutSeconds": ready_timeout,
        "registration": {
            "mode": "haproxy-keepalived",
            "address": lab.vip,
            "hosts": [{"address": lab.host(n).address, "name": n} for n in lbs],
        },
        "servers": {"taint": True, "hosts": [{"address": lab.host(n).address, "name": n} for n in servers]},
        "agents": {"hosts": [{"address": lab.host(n).address, "name": n} for n in agents]},
        "ssh": {"user": "root", "port": 22},
        "sshPrivateKey": lab.private_key,
        "keepalivedPassword": KEEPALIVED_PASSWORD,
        "tlsSan": [],
    }
    if token is not None:
        config["token"] = token
    return config


@dataclass
class LabStack:
    """A lab, its installer server and an engine that keeps state between applies."""

    topology: Topology
    install_delay: float = 0.0
    lab: Lab = field(init=False)
    installer: InstallerServer = field(init=False)
    engine: LabEngine = field(init=False)

    def __post_init__(self) -> None:
        build_installer = load_build_installer()
        self.lab = Lab(self.topology)
        self.lab.start()
        try:
            self.installer = InstallerServer(self.lab, build_installer(install_delay_seconds=self.install_delay))
            self.engine = LabEngine(self.lab.by_address(), self.lab.known_host_keys())
        except BaseException:
            self.lab.teardown()
            raise

    def config(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("servers", [h.name for h in self.lab.by_role("server")])
        kwargs.setdefault("agents", [h.name for h in self.lab.by_role("agent")])
        return stack_config(self.lab, self.installer.url, **kwargs)

    def apply(
        self, config: Optional[Mapping[str, Any]] = None, *, rerun_all: bool = False, replace: Sequence[str] = (), **kwargs: Any
    ) -> ApplyResult:
        """One apply of the program; `kwargs` go to config() when no config is given."""
        return self.engine.apply(
            config if config is not None else self.config(**kwargs), rerun_all=rerun_all, replace=replace
        )

    def close(self) -> None:
        try:
            self.engine.close()
            self.installer.close()
        finally:
            self.lab.teardown()

    def __enter__(self) -> "LabStack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @classmethod
    @contextlib.contextmanager
    def checked(cls, topology: Topology) -> Iterator["LabStack"]:
        """A stack for a test module: torn down afterwards, and checked to have left nothing behind."""
        stack = cls(topology)
        try:
            yield stack
        finally:
            stack.close()
            assert stack.lab.leftovers() == []

    # ---- observations
    def host(self, name: str) -> Host:
        return self.lab.host(name)

    def kubectl_nodes(self, server: str = "server-1", kubeconfig: str = "/etc/rancher/rke2/rke2.yaml") -> dict[str, str]:
        """name -> STATUS, as `kubectl get nodes` prints it on a server."""
        out = self.host(server).sh(
            f"/var/lib/rancher/rke2/bin/kubectl --kubeconfig {kubeconfig} get nodes --no-headers", check=False
        )
        return {line.split()[0]: line.split()[1] for line in out.splitlines() if len(line.split()) > 1}

    def wait_nodes(self, expected: Mapping[str, str], timeout: float = 30.0, server: str = "server-1") -> dict[str, str]:
        """Polls `kubectl get nodes` until it shows `expected` (bounded); returns the last listing."""
        deadline = time.monotonic() + timeout
        nodes = self.kubectl_nodes(server)
        while nodes != dict(expected) and time.monotonic() < deadline:
            time.sleep(0.5)
            nodes = self.kubectl_nodes(server)
        return nodes

    def vip_holders(self) -> list[str]:
        return [h.name for h in self.lab.by_role("lb") if self.lab.vip in h.ipv4_addresses()]

    def wait_vip_on(self, lb: str, timeout: float = 30.0) -> list[str]:
        """Waits (bounded) until `lb` alone holds the VIP; returns the holders last seen. Right after
        Keepalived starts, the VIP can sit on the backup for a few seconds until the primary, whose
        HAProxy check must pass twice first, preempts it."""
        deadline = time.monotonic() + timeout
        holders = self.vip_holders()
        while holders != [lb] and time.monotonic() < deadline:
            time.sleep(0.05)
            holders = self.vip_holders()
        return holders

    def haproxy_states(self, lb: str) -> dict[tuple[str, str], str]:
        """(backend, server) -> status (UP, DOWN, ...), from HAProxy's own stats via its master CLI."""
        out = self.host(lb).sh("echo '@1 show stat' | socat -t 2 stdio unix-connect:/run/haproxy-master.sock", check=False)
        states = {}
        for line in out.splitlines():
            fields = line.split(",")
            if len(fields) > 17 and not line.startswith("#") and fields[1] not in ("FRONTEND", "BACKEND"):
                states[(fields[0], fields[1])] = fields[17]
        return states

    def wait_haproxy_state(self, lb: str, server: str, wanted: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        states: dict = {}
        while time.monotonic() < deadline:
            states = self.haproxy_states(lb)
            mine = [s for (backend, name), s in states.items() if name == server]
            if mine and all(s.startswith(wanted) for s in mine):
                return states
            time.sleep(0.2)
        raise AssertionError(f"HAProxy on {lb} did not mark {server} {wanted} within {timeout}s: {states}")


def kill_haproxy_and_time_failover(stack: LabStack, timeout: float = 30.0) -> dict[str, Any]:
    """Kills HAProxy (SIGKILL, master and workers) on the VIP holder, lb-1 once the VIP is settled there,
    and times the VIP's move to lb-2. Returns holder, new holder, and seconds from the kill to the VIP
    on the peer."""
    holders = stack.wait_vip_on("lb-1")
    if holders != ["lb-1"]:
        raise AssertionError(f"expected the VIP on lb-1 alone, found it on {holders}")
    holder, peer = "lb-1", "lb-2"
    killed_at = time.monotonic()
    stack.host(holder).exec("killall -9 haproxy")
    deadline = killed_at + timeout
    moved_at = None
    released_at = None
    while time.monotonic() < deadline:
        on_peer = stack.lab.vip in stack.host(peer).ipv4_addresses()
        on_holder = stack.lab.vip in stack.host(holder).ipv4_addresses()
        now = time.monotonic()
        if not on_holder and released_at is None:
            released_at = now
        if on_peer:
            moved_at = now
            break
        time.sleep(0.05)
    if moved_at is None:
        raise AssertionError(f"the VIP did not move from {holder} to {peer} within {timeout}s")
    return {
        "holder": holder,
        "new_holder": peer,
        "killed_at": killed_at,
        "moved_at": moved_at,
        "seconds": moved_at - killed_at,
        "released_seconds": (released_at - killed_at) if released_at else None,
    }


# ---------------------------------------------------------------------------------------------------
# Files and secrets

MANAGED_PATHS = ("/etc", "/usr/local", "/opt", "/srv", "/var/lib/rancher/rke2/bin")
"""What the scripts install or write; /var/log and the services' own data are the services' business."""


def snapshot_files(host: Host, roots: Iterable[str] = MANAGED_PATHS) -> dict[str, tuple]:
    """path -> (sha256, mode, mtime_ns, inode) of every regular file or link the host wrote under
    `roots` (its overlay upper directories hold exactly what the host changed)."""
    snapshot = {}
    upper = host.directory / "upper"
    for root in roots:
        base = upper / root.strip("/")
        if not base.exists():
            continue
        for dirpath, _, filenames in os.walk(base):
            for filename in filenames:
                path = Path(dirpath) / filename
                inside = "/" + str(path.relative_to(upper))
                info = path.lstat()
                if stat.S_ISREG(info.st_mode):
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                elif stat.S_ISLNK(info.st_mode):
                    digest = "link:" + os.readlink(path)
                else:
                    digest = f"special:{info.st_mode:o}"
                snapshot[inside] = (digest, stat.S_IMODE(info.st_mode), info.st_mtime_ns, info.st_ino)
    return snapshot


def host_logs(host: Host) -> dict[str, bytes]:
    """Every file under the host's /var/log (what its services and the stand-ins logged)."""
    logs = {}
    upper = host.directory / "upper" / "var" / "log"
    if not upper.exists():
        return logs
    for dirpath, _, filenames in os.walk(upper):
        for filename in filenames:
            path = Path(dirpath) / filename
            if path.is_file():
                logs["/" + str(path.relative_to(host.directory / "upper"))] = path.read_bytes()
    return logs


class ProcessWatcher:
    """Samples every process's command line on the machine (all lab hosts' PID namespaces are inside
    the machine's) while an apply runs, to prove a secret never appears in a process list."""

    def __init__(self, interval: float = 0.05, max_seconds: float = 900.0):
        self.interval = interval
        self.max_seconds = max_seconds
        self.seen: dict[int, bytes] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ProcessWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/cmdline", "rb") as handle:
                            cmdline = handle.read()
                    except OSError:
                        continue
                    key = hash((entry, cmdline))
                    self.seen[key] = cmdline
            self.samples += 1
            self._stop.wait(self.interval)

    def containing(self, secret: str) -> list[str]:
        needle = secret.encode()
        return [c.replace(b"\0", b" ").decode(errors="replace")[:200] for c in self.seen.values() if needle in c]


def yaml_token(config_text: str) -> Optional[str]:
    match = re.search(r"^token:\s*(\S+)\s*$", config_text, re.M)
    return match.group(1).strip("'\"") if match else None
