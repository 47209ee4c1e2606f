"""Lab hosts: network namespaces on a private bridge, each with its own files, processes and sshd.

A `Lab` builds, on this machine and as root:
- a Linux bridge `khlab<N>` holding 10.77.<N>.1/24, a subnet that exists only on that bridge (N is
  the first free index, so two labs can run side by side);
- per host, a network namespace `khlab<N>-<host>` joined to the bridge by a veth pair, with the
  address 10.77.<N>.<10+i>, no default route and IPv6 off, and inside it a PID 1 (hostinit.py) in new
  mount/pid/uts/ipc namespaces that overlays /etc /var /usr/local /opt /srv, mounts a private /run,
  /tmp and /root, installs the systemctl stand-in and runs a key-only sshd with a fresh host key;
- one ed25519 client key for root on every host, and a virtual IP 10.77.<N>.100 left free for
  Keepalived.

Traffic stays on the bridge: the root namespace reaches the hosts through it, the hosts reach each
other and the root namespace's bridge address, and nothing else (no default route anywhere in a
host). `teardown()` always leaves no namespace, bridge, mount or process; it runs from the fixture's
finalizer, from atexit and on SIGTERM, and a later lab clears what a killed run left behind (labs
whose owner process is gone, recorded in /run/kube-ha-lab).
"""

from __future__ import annotations

import atexit
import base64
import io
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

LAB_DIR = Path(__file__).resolve().parent
HOSTINIT = LAB_DIR / "hostinit.py"
SYSTEMCTL = LAB_DIR / "systemctl_standin.py"
REGISTRY = Path("/run/kube-ha-lab")
BRIDGE_PREFIX = "khlab"
MAX_LABS = 200
HOST_START_TIMEOUT = 20.0
REQUIRED_BINARIES = ("ip", "unshare", "nsenter", "mount", "/usr/sbin/sshd", "/usr/bin/python3")


def missing_requirements(extra: Iterable[str] = ()) -> list[str]:
    """Binaries the lab needs that this machine lacks."""
    return [b for b in (*REQUIRED_BINARIES, *extra) if not (os.path.exists(b) if b.startswith("/") else shutil.which(b))]


class LabError(RuntimeError):
    """The lab could not be built or used."""


def run(argv: Sequence[str], check: bool = True, timeout: float = 30.0, input: Optional[bytes] = None) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), input=input, capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.decode(errors='replace').strip()}")
    return result


def _keypair() -> tuple[str, str]:
    """A fresh ed25519 key: (OpenSSH private key PEM, public key line)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, public


SSHD_CONFIG = """\
# Lab host sshd: key-only root login on the host's address.
ListenAddress {address}
Port 22
HostKey /etc/ssh/lab/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
MaxSessions 100
MaxStartups 100:30:200
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""


@dataclass
class Host:
    """One lab host."""

    lab: "Lab"
    name: str
    role: str
    """lb, server or agent: only a label, the stack config decides what a host does."""
    address: str
    netns: str
    directory: Path
    host_key_public: str
    init_pid: int = 0
    unshare: Optional[subprocess.Popen] = None

    @property
    def root(self) -> Path:
        """The host's file system as its own processes see it (through /proc/<pid 1>/root)."""
        return Path(f"/proc/{self.init_pid}/root")

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def read(self, inside: str) -> str:
        return self.path(inside).read_text()

    def exists(self, inside: str) -> bool:
        return self.path(inside).exists()

    def exec(self, command: str, check: bool = True, timeout: float = 60.0, input: Optional[bytes] = None) -> subprocess.CompletedProcess:
        """Runs a shell command inside the host (all its namespaces), as a test's way to look or act."""
        argv = ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p", "-r", "--wd=/",
                "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root", "/bin/bash", "-c", command]
        result = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise LabError(
                f"on {self.name}: {command!r} exited {result.returncode}: {result.stderr.decode(errors='replace').strip()}"
            )
        return result

    def sh(self, command: str, **kwargs) -> str:
        return self.exec(command, **kwargs).stdout.decode()

    def ssh(self, command: str, stdin: bytes = b"", timeout: float = 60.0) -> tuple[int, str, str]:
        """Runs a command over SSH as the program would, with the lab key."""
        client = self.lab.ssh_client(self)
        try:
            return exec_over(client.get_transport(), command, stdin, timeout)
        finally:
            client.close()

    def pids(self) -> list[int]:
        """Pids (as the machine sees them) of every process in this host's PID namespace."""
        try:
            target = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        except OSError:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/pid") == target:
                        found.append(int(entry))
                except OSError:
                    continue
        return found

    def systemctl_calls(self) -> list[dict]:
        """Every call the host's systemctl stand-in logged, oldest first."""
        try:
            text = self.read("/var/log/lab-systemctl.log")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def unit_log(self, unit: str) -> str:
        try:
            return self.read(f"/var/log/lab-units/{unit}.log")
        except FileNotFoundError:
            return ""

    def unit_state(self, unit: str) -> str:
        return self.exec(f"systemctl is-active {unit}", check=False).stdout.decode().strip()

    def unit_main_pid(self, unit: str) -> Optional[int]:
        try:
            text = self.read(f"/run/lab-systemd/{unit}.state")
        except FileNotFoundError:
            return None
        fields = dict(line.partition("=")[::2] for line in text.splitlines())
        return int(fields["pid"]) if fields.get("pid") else None

    def ipv4_addresses(self) -> list[str]:
        out = run(["ip", "-n", self.netns, "-4", "-o", "addr", "show", "dev", "eth0"], check=False).stdout.decode()
        return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]


def exec_over(transport: paramiko.Transport, command: str, stdin: bytes, timeout: float) -> tuple[int, str, str]:
    """Runs `command` on an open SSH transport: (exit status, stdout, stderr). Bounded by `timeout`."""
    channel = transport.open_session(timeout=30)
    try:
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        out, err = bytearray(), bytearray()

        def drain() -> None:
            while channel.recv_ready():
                out.extend(channel.recv(65536))
            while channel.recv_stderr_ready():
                err.extend(channel.recv_stderr(65536))

        deadline = time.monotonic() + timeout
        while True:
            drain()
            if channel.exit_status_ready():
                # The server sends all data before the exit status, and paramiko reads in order.
                drain()
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"still running after {timeout:.0f}s")
            channel.status_event.wait(0.02)
        return channel.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        channel.close()


@dataclass
class Topology:
    """How many hosts of each kind, named lb-1.., server-1.., agent-1..; a scenario may leave some
    out of the stack config at first and add them later (scale out)."""

    lbs: int = 2
    servers: int = 3
    agents: int = 2

    def names(self) -> list[tuple[str, str]]:
        out = []
        for role, count in (("lb", self.lbs), ("server", self.servers), ("agent", self.agents)):
            out += [(f"{role}-{i}", role) for i in range(1, count + 1)]
        return out


@dataclass
class Lab:
    """A set of lab hosts on one bridge. Use as a context manager, or call start() and teardown()."""

    topology: Topology = field(default_factory=Topology)
    keep_dir: bool = False

    def __post_init__(self) -> None:
        self.index: Optional[int] = None
        self.hosts: dict[str, Host] = {}
        self.directory: Optional[Path] = None
        self.private_key, self.public_key = _keypair()
        self._pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(self.private_key))
        self._created_netns: list[str] = []
        self._veths: list[str] = []
        self._netns_ids: set[str] = set()
        self._bridge_created = False
        self._torn_down = False
        self._lock = threading.Lock()
        self._previous_sigterm = None

    # ---- addresses
    @property
    def bridge(self) -> str:
        return f"{BRIDGE_PREFIX}{self.index}"

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.77.{self.index}.0/24")

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge (the installer's HTTP server listens here)."""
        return f"10.77.{self.index}.1"

    @property
    def vip(self) -> str:
        return f"10.77.{self.index}.100"

    def host(self, name: str) -> Host:
        return self.hosts[name]

    def by_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts.values() if h.role == role]

    def by_address(self) -> dict[str, str]:
        return {h.address: h.name for h in self.hosts.values()}

    # ---- lifecycle
    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def start(self) -> "Lab":
        missing = missing_requirements()
        if missing:
            raise LabError(f"the lab needs {', '.join(missing)}")
        clear_stale_labs()
        atexit.register(self.teardown)
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self._claim_bridge()
            self.directory = Path(tempfile.mkdtemp(prefix=f"kube-ha-lab{self.index}-"))
            os.chmod(self.directory, 0o755)
            self._write_registry()
            for i, (name, role) in enumerate(self.topology.names()):
                self._add_host(name, role, f"10.77.{self.index}.{10 + i}")
            for host in self.hosts.values():
                self._start_host(host)
            self._wait_hosts()
            self._record_netns_ids()
        except BaseException:
            self.teardown()
            raise
        return self

    def _on_sigterm(self, signum, frame):
        self.teardown()
        previous = self._previous_sigterm
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    def _claim_bridge(self) -> None:
        taken_subnets = run(["ip", "-4", "-o", "addr", "show"], check=False).stdout.decode()
        for index in range(1, MAX_LABS):
            if f" 10.77.{index}." in taken_subnets:
                continue
            # `ip link add` is atomic: a name another lab holds fails, and we try the next.
            result = run(["ip", "link", "add", f"{BRIDGE_PREFIX}{index}", "type", "bridge"], check=False)
            if result.returncode == 0:
                self.index = index
                self._bridge_created = True
                break
        else:
            raise LabError("no free lab index (bridges khlab1..khlab199 all exist)")
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6", "1")
        run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])

    def _write_registry(self) -> None:
        REGISTRY.mkdir(parents=True, exist_ok=True)
        (REGISTRY / f"{self.index}.json").write_text(
            json.dumps({"owner": os.getpid(), "owner_start": _starttime(os.getpid()), "directory": str(self.directory)})
        )

    def _add_host(self, name: str, role: str, address: str) -> None:
        netns = f"{self.bridge}-{name}"
        run(["ip", "netns", "add", netns])
        self._created_netns.append(netns)
        host_dir = self.directory / name
        host_dir.mkdir()
        veth = f"kh{self.index}v{len(self.hosts)}"
        self._veths.append(veth)
        if _link_exists(veth):
            # Left by a lab of the same index that was killed: ours by its name, and its lab is gone.
            run(["ip", "link", "del", veth], check=False)
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6", "1")
        run(["ip", "link", "set", veth, "master", self.bridge])
        run(["ip", "link", "set", veth, "up"])
        for key in ("all", "default", "lo"):
            run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"], check=False)
        run(["ip", "-n", netns, "link", "set", "lo", "up"])
        run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"], check=False)
        run(["ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0"])
        run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        key_path = host_dir / "ssh_host_ed25519_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}", "-f", str(key_path)])
        (host_dir / "sshd_config").write_text(SSHD_CONFIG.format(address=address))
        public = (host_dir / "ssh_host_ed25519_key.pub").read_text().split()
        self.hosts[name] = Host(self, name, role, address, netns, host_dir, host_key_public=public[1])

    def _start_host(self, host: Host) -> None:
        spec = {
            "dir": str(host.directory),
            "hostname": host.name,
            "authorized_key": self.public_key,
            "systemctl": str(SYSTEMCTL),
            "hosts": {h.name: h.address for h in self.hosts.values()},
        }
        argv = ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--pid", "--uts", "--ipc", "--fork",
                "--mount-proc", "--propagation", "private", "/usr/bin/python3", str(HOSTINIT), json.dumps(spec)]
        log = open(host.directory / "init.log", "ab")
        # cwd "/": the caller's directory may not exist inside the host (its /tmp is private), and
        # every process entering the host inherits the init's directory.
        host.unshare = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd="/"
        )
        log.close()

    def _wait_hosts(self) -> None:
        deadline = time.monotonic() + HOST_START_TIMEOUT
        pending = dict(self.hosts)
        while pending:
            for name, host in list(pending.items()):
                control = host.directory / "control"
                text = control.read_text() if control.exists() else ""
                if text.startswith("error"):
                    raise LabError(f"host {name} failed to start: {text.strip()}; see {host.directory / 'init.log'}")
                if text.startswith("ready") and _port_open(host.address, 22):
                    host.init_pid = _child_of(host.unshare.pid)
                    if host.init_pid:
                        del pending[name]
                if host.unshare.poll() is not None:
                    raise LabError(f"host {name} exited during start; see {host.directory / 'init.log'}")
            if time.monotonic() > deadline:
                raise LabError(f"hosts not up after {HOST_START_TIMEOUT:.0f}s: {', '.join(pending)}")
            time.sleep(0.02)

    def teardown(self) -> None:
        """Stops every host and removes the namespaces, the bridge and the lab directory. Idempotent."""
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
        errors = []
        for host in self.hosts.values():
            _stop_host_processes(host.unshare.pid if host.unshare else None, host.init_pid)
        for host in self.hosts.values():
            if host.unshare is not None:
                try:
                    host.unshare.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    host.unshare.kill()
                    host.unshare.wait(timeout=5)
        for veth in self._veths:
            # Deleting one end of a veth pair deletes both, even if something still pins the namespace.
            if run(["ip", "link", "del", veth], check=False).returncode != 0 and _link_exists(veth):
                errors.append(f"link {veth}")
        for netns in self._created_netns:
            if run(["ip", "netns", "del", netns], check=False).returncode != 0 and os.path.exists(f"/run/netns/{netns}"):
                errors.append(f"netns {netns}")
        if self._bridge_created:
            if run(["ip", "link", "del", self.bridge], check=False).returncode != 0 and _link_exists(self.bridge):
                errors.append(f"bridge {self.bridge}")
        if self.index is not None:
            try:
                (REGISTRY / f"{self.index}.json").unlink()
            except FileNotFoundError:
                pass
        if self.directory is not None and not self.keep_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
        _release_shared_mounts()
        try:
            atexit.unregister(self.teardown)
        except Exception:  # noqa: BLE001
            pass
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        if errors:
            raise LabError(f"teardown left: {', '.join(errors)}")

    # ---- what a teardown must leave behind: nothing
    def leftovers(self) -> list[str]:
        found = []
        if self.index is None:
            return found
        if _link_exists(self.bridge):
            found.append(f"bridge {self.bridge}")
        netns = run(["ip", "netns", "list"], check=False).stdout.decode()
        found += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith(f"{self.bridge}-")]
        links = run(["ip", "-o", "link", "show"], check=False).stdout.decode()
        found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if f" kh{self.index}v" in line]
        mounts = Path("/proc/self/mountinfo").read_text()
        if self.directory is not None:
            found += [f"mount {line.split()[4]}" for line in mounts.splitlines() if str(self.directory) in line]
            if self.directory.exists() and not self.keep_dir:
                found.append(f"directory {self.directory}")
        for host in self.hosts.values():
            if host.unshare is not None and _pid_alive(host.unshare.pid):
                found.append(f"process {host.unshare.pid} (unshare of {host.name})")
            if host.init_pid and _pid_alive(host.init_pid):
                found.append(f"process {host.init_pid} (init of {host.name})")
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    ns = os.readlink(f"/proc/{entry}/ns/net")
                except OSError:
                    continue
                if ns in self._netns_ids:
                    found.append(f"process {entry} in a lab network namespace")
        return found

    def _record_netns_ids(self) -> None:
        """Remembers the network namespaces' ids so leftovers() can find processes still in them."""
        for host in self.hosts.values():
            try:
                self._netns_ids.add(os.readlink(f"/proc/{host.init_pid}/ns/net"))
            except OSError:
                pass

    # ---- SSH
    def ssh_client(self, host: Host) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.get_host_keys().add(host.address, "ssh-ed25519", paramiko.Ed25519Key(data=base64.b64decode(host.host_key_public)))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = socket.create_connection((host.address, 22), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.connect(host.address, username="root", pkey=self._pkey, sock=sock, allow_agent=False,
                       look_for_keys=False, timeout=10, banner_timeout=10, auth_timeout=10)
        return client

    def known_host_keys(self) -> dict[str, str]:
        """address -> base64 ed25519 host key, for checking the host keys the engine sees."""
        return {h.address: h.host_key_public for h in self.hosts.values()}


# ---------------------------------------------------------------------------------------------------
# Helpers


def _write_sysctl(path: str, value: str) -> None:
    try:
        Path(path).write_text(value)
    except OSError:
        pass


def _link_exists(name: str) -> bool:
    return run(["ip", "link", "show", name], check=False).returncode == 0


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _child_of(pid: int) -> int:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0
    return int(children[0]) if children else 0


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZXx"


def _starttime(pid: int) -> Optional[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _stop_host_processes(unshare_pid: Optional[int], init_pid: int) -> None:
    """SIGTERM to the host's PID 1 (unshare --fork ignores it), which stops the host; SIGKILL if it hangs."""
    if not init_pid and unshare_pid:
        init_pid = _child_of(unshare_pid)
    if init_pid and _pid_alive(init_pid):
        try:
            os.kill(init_pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline and _pid_alive(init_pid):
            time.sleep(0.02)
        if _pid_alive(init_pid):
            try:
                # PID 1 of a namespace dies of SIGKILL from its parent namespace, and takes the rest with it.
                os.kill(init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _release_shared_mounts() -> None:
    """`ip netns add` mounts /run/netns on first use; unmount it again once no lab and no namespace uses it."""
    try:
        if REGISTRY.is_dir() and not any(REGISTRY.iterdir()):
            REGISTRY.rmdir()
        if REGISTRY.exists() or not os.path.isdir("/run/netns") or os.listdir("/run/netns"):
            return
        if any(line.split()[4] == "/run/netns" for line in Path("/proc/self/mountinfo").read_text().splitlines()):
            # Fails harmlessly (EBUSY) if another lab added a namespace in the meantime.
            run(["umount", "/run/netns"], check=False)
    except OSError:
        pass


def clear_stale_labs() -> list[int]:
    """Tears down labs whose owner process is gone (a run that was killed before its teardown)."""
    cleared = []
    if not REGISTRY.is_dir():
        return cleared
    for entry in REGISTRY.glob("*.json"):
        try:
            info = json.loads(entry.read_text())
            index = int(entry.stem)
        except (OSError, ValueError):
            continue
        owner = info.get("owner")
        if owner and _pid_alive(owner) and _starttime(owner) == info.get("owner_start"):
            continue
        bridge = f"{BRIDGE_PREFIX}{index}"
        netns = run(["ip", "netns", "list"], check=False).stdout.decode()
        for line in netns.splitlines():
            name = line.split()[0]
            if name.startswith(f"{bridge}-"):
                for pid in run(["ip", "netns", "pids", name], check=False).stdout.decode().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                deadline = time.monotonic() + 5
                while run(["ip", "netns", "pids", name], check=False).stdout.strip() and time.monotonic() < deadline:
                    time.sleep(0.05)
                run(["ip", "netns", "del", name], check=False)
        links = run(["ip", "-o", "link", "show"], check=False).stdout.decode()
        for line in links.splitlines():
            name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if re.fullmatch(rf"kh{index}v\d+", name):
                run(["ip", "link", "del", name], check=False)
        run(["ip", "link", "del", bridge], check=False)
        directory = info.get("directory")
        if directory and directory.startswith(tempfile.gettempdir()) and "kube-ha-lab" in directory:
            shutil.rmtree(directory, ignore_errors=True)
        entry.unlink(missing_ok=True)
        cleared.append(index)
    return cleared
