"""The RKE2 stand-in on real network-namespace hosts, without the rest of the lab.

Builds its own small lab (bridge khsbr0, 10.78.0.0/24, namespaces khs-*, kept apart from the hosts
engineer's 10.77.0.0/24 lab so both can run at once): three servers, an agent and a TCP forwarder
standing in for HAProxy. Each host is a network namespace plus mount/pid/uts namespaces with
overlays over /etc, /var and /usr/local, so the installer and the stand-in write their real paths.
The stand-in runs directly (no sshd, no systemctl), with LAB_READY_FILE as the lab's systemctl sets it.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.lab.standin.installer import build_installer

pytestmark = pytest.mark.lab

VERSION = "v1.33.5+rke2r1"
BRIDGE = "khsbr0"
SUBNET = "10.78.0"
VIP = f"{SUBNET}.40"  # the registration address: in every server's tls-san
BAD_VIP = f"{SUBNET}.50"  # forwards to the same server but is in no tls-san
HOSTS = {  # namespace: (hostname, address)
    "khs-s1": ("KHS-Srv1", f"{SUBNET}.11"),
    "khs-s2": ("khs-srv2", f"{SUBNET}.12"),
    "khs-s3": ("khs-srv3", f"{SUBNET}.13"),
    "khs-a1": ("khs-agent1", f"{SUBNET}.21"),
    "khs-lb": ("khs-lb", VIP),
}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KUBECTL = "/var/lib/rancher/rke2/bin/kubectl"
KUBECONFIG = "/etc/rancher/rke2/rke2.yaml"
READY_FILE = "/var/lib/standin-test/ready"
TLS = "/var/lib/rancher/rke2/server/tls"

# PID 1 of a host: mounts the overlays, names the host, reaps orphans (a zombie still passes kill -0),
# and on SIGTERM kills the host's processes; when it exits the kernel kills whatever is left.
HOST_INIT = r"""
import os, signal, socket, subprocess, sys, time
upper, hostname = sys.argv[1], sys.argv[2]
for d in ("etc", "var", "usr/local"):
    top = os.path.join(upper, d.replace("/", "-"))
    os.makedirs(top + "/upper", exist_ok=True); os.makedirs(top + "/work", exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir=/{d},upperdir={top}/upper,workdir={top}/work", "/" + d], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
socket.sethostname(hostname)
class Stop(BaseException): pass
def stop(*_): raise Stop()
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
try:
    while True:
        try: os.waitpid(-1, 0)
        except ChildProcessError: time.sleep(0.5)
except Stop:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try: os.kill(-1, signal.SIGTERM)
    except ProcessLookupError: pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0): time.sleep(0.1)
        except ChildProcessError: break
"""

# The registration address's load balancer: a plain TCP forwarder (no health checks needed here).
TCP_FORWARDER = r"""
import socket, sys, threading
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data: break
            b.sendall(data)
    except OSError: pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
def serve(listen, target):
    server = socket.create_server(listen, reuse_port=False)
    while True:
        client, _ = server.accept()
        try: upstream = socket.create_connection(target, timeout=5)
        except OSError: client.close(); continue
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()
for spec in sys.argv[1:]:
    src, dst = spec.split("=")
    (sh, sp), (dh, dp) = src.split(":"), dst.split(":")
    threading.Thread(target=serve, args=((sh, int(sp)), (dh, int(dp))), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, bridges, mounts)"
    for tool in ("ip", "unshare", "nsenter", "mount", "etcd", "etcdctl", "curl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (etcd: apt-get install etcd-server etcd-client)"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "ip netns is unavailable"
    probe = subprocess.run(["/usr/bin/python3", "-c", "import yaml, cryptography"], capture_output=True)
    if probe.returncode != 0:
        return "/usr/bin/python3 lacks python3-yaml or python3-cryptography"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _read_line(proc: subprocess.Popen, seconds: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    return proc.stdout.readline().decode().strip() if ready else ""


class Service:
    """The stand-in run as its unit would run it: ExecStart with LAB_READY_FILE, output to a log."""

    def __init__(self, host: "Host", role: str):
        self.host, self.role = host, role
        self.log_path = host.dir / f"rke2-{role}.{len(host.services)}.log"
        host.run(["rm", "-f", READY_FILE])
        env = {"PATH": PATH, "LANG": "C.UTF-8", "LAB_READY_FILE": READY_FILE, "RKE2_STANDIN_JOIN_TIMEOUT": "20"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(host.nsenter(["/usr/local/bin/rke2", role]), env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.monotonic()
        host.services.append(self)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, seconds: float = 40) -> float:
        """Seconds from start to ready; fails with the log if the service exits or times out."""
        ready = self.host.upper_path(READY_FILE)
        deadline = self.started + seconds
        while time.monotonic() < deadline:
            if ready.exists():
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                pytest.fail(f"rke2 {self.role} on {self.host.ns} exited {self.proc.returncode}:\n{self.log}")
            time.sleep(0.1)
        pytest.fail(f"rke2 {self.role} on {self.host.ns} not ready after {seconds}s:\n{self.log}")

    def wait_exit(self, seconds: float = 30) -> int:
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(f"rke2 {self.role} on {self.host.ns} still running after {seconds}s:\n{self.log}")

    def stop(self, seconds: float = 15) -> int:
        """SIGTERM to the stand-in itself (nsenter's child), as `systemctl stop` would send it."""
        for pid in _children(self.proc.pid):
            os.kill(pid, signal.SIGTERM)
        return self.wait_exit(seconds)


class Host:
    def __init__(self, ns: str, hostname: str, address: str, root: Path):
        self.ns, self.hostname, self.address = ns, hostname, address
        self.dir = root / ns
        self.dir.mkdir(parents=True)
        self.services: list[Service] = []
        self.unshare = subprocess.Popen(
            ["ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--mount-proc",
             "--kill-child", "/usr/bin/python3", "-c", HOST_INIT, str(self.dir), hostname],
            # cwd "/": the test's directory may not exist inside the host, whose /tmp is private.
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True, env={"PATH": PATH}, cwd="/",
        )
        line = _read_line(self.unshare, 10)
        children = _children(self.unshare.pid)
        if line != "ready" or not children:
            self.unshare.kill()
            self.unshare.wait(timeout=5)
            raise RuntimeError(f"host {ns} did not start (init said {line!r})")
        self.init_pid = children[0]

    def nsenter(self, argv: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p", "-r", "--wd=/", *argv]

    def run(self, argv: list[str], stdin: str | None = None, env: dict | None = None, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess:
        result = subprocess.run(self.nsenter(argv), input=stdin, capture_output=True, text=True, timeout=timeout,
                                env={"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} on {self.ns} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def upper_path(self, path: str) -> Path:
        """Where a file the host wrote under /etc, /var or /usr/local lands, readable from outside."""
        for top in ("usr/local", "etc", "var"):
            if path.startswith(f"/{top}/"):
                return self.dir / top.replace("/", "-") / "upper" / path[len(top) + 2:]
        raise ValueError(path)

    def write_config(self, config: dict | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.run(["sh", "-c", "umask 077; mkdir -p /etc/rancher/rke2 && cat > /etc/rancher/rke2/config.yaml"], stdin=text)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run([KUBECTL, "--kubeconfig", KUBECONFIG, *args], check=check)

    def etcd_members(self) -> list[dict]:
        out = self.run(["etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={TLS}/server-ca.crt",
                        f"--cert={TLS}/etcd/server-client.crt", f"--key={TLS}/etcd/server-client.key",
                        "member", "list", "-w", "json"], env={"ETCDCTL_API": "3"}).stdout
        return json.loads(out)["members"]

    def teardown(self) -> None:
        # Signal PID 1 (unshare --fork ignores SIGTERM), then make sure every process we started is gone.
        try:
            os.kill(self.init_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for proc in [self.unshare, *(s.proc for s in self.services)]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


class Lab:
    def __init__(self, root: Path):
        self.root = root
        self.hosts: dict[str, Host] = {}
        self.forwarder: subprocess.Popen | None = None
        self.timings: dict[str, float] = {}

    def up(self) -> None:
        self.clean_network()
        _ip("link", "add", BRIDGE, "type", "bridge")
        subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{BRIDGE}.disable_ipv6=1"], check=False)
        _ip("link", "set", BRIDGE, "up")
        for ns, (hostname, address) in HOSTS.items():
            veth = "khsv-" + ns.split("-", 1)[1]
            _ip("netns", "add", ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", veth, "master", BRIDGE, "up")
            for setting in ("all", "default", "eth0"):
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{setting}.disable_ipv6=1"],
                               check=True, timeout=10)
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", "khs-lb", "addr", "add", f"{BAD_VIP}/24", "dev", "eth0")
        for ns, (hostname, address) in HOSTS.items():
            if ns != "khs-lb":
                self.hosts[ns] = Host(ns, hostname, address, self.root)
        s1 = HOSTS["khs-s1"][1]
        self.forwarder = subprocess.Popen(
            ["ip", "netns", "exec", "khs-lb", "/usr/bin/python3", "-c", TCP_FORWARDER,
             f"{VIP}:9345={s1}:9345", f"{VIP}:6443={s1}:6443", f"{BAD_VIP}:9345={s1}:9345"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        if _read_line(self.forwarder, 10) != "ready":
            raise RuntimeError("the TCP forwarder did not start")

    def down(self) -> None:
        for host in self.hosts.values():
            host.teardown()
        if self.forwarder is not None and self.forwarder.poll() is None:
            self.forwarder.terminate()
            try:
                self.forwarder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.forwarder.kill()
                self.forwarder.wait(timeout=5)
        self.clean_network()

    @staticmethod
    def clean_network() -> None:
        """Only this file's names: left over from an interrupted run, or ours at teardown."""
        listed = _ip("netns", "list", check=False).stdout.split("\n")
        for ns in HOSTS:
            if any(line.split(" ")[0] == ns for line in listed):
                _ip("netns", "del", ns, check=False)
        if _ip("link", "show", BRIDGE, check=False).returncode == 0:
            _ip("link", "del", BRIDGE, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    lab = Lab(tmp_path_factory.mktemp("standin-lab"))
    try:
        lab.up()
        installer = build_installer()
        for host in lab.hosts.values():
            role = "agent" if host.ns == "khs-a1" else "server"
            host.run(["sh", "-c", "cat > /tmp/install.sh"], stdin=installer)
            host.run(["sh", "/tmp/install.sh"], env={"INSTALL_RKE2_VERSION": VERSION, "INSTALL_RKE2_TYPE": role})
        yield lab
    finally:
        lab.down()
        if lab.timings:
            print("\nstand-in timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in lab.timings.items()))


@pytest.fixture(scope="module")
def cluster(lab):
    """The bootstrap server, up; later tests add to the same cluster in file order."""
    s1 = lab.hosts["khs-s1"]
    s1.write_config({"tls-san": [VIP], "write-kubeconfig-mode": "0600", "some-unknown-flag": True})
    lab.timings["bootstrap"] = Service(s1, "server").wait_ready()
    return lab


def _server_token(lab) -> str:
    return lab.hosts["khs-s1"].upper_path("/var/lib/rancher/rke2/server/node-token").read_text().strip()


def _node_lines(host: Host) -> dict[str, list[str]]:
    lines = host.kubectl("get", "nodes", "--no-headers").stdout.splitlines()
    return {line.split()[0]: line.split() for line in lines}


def _wait_status(host: Host, node: str, status: str, seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        result = host.kubectl("get", "node", node, "--no-headers", check=False)
        if result.returncode == 0 and result.stdout.split()[1] == status:
            return time.monotonic() - start
        time.sleep(0.5)
    pytest.fail(f"node {node} not {status} after {seconds}s")


# ---------------------------------------------------------------------------------------------------


def test_installer_pins_version_installs_and_is_idempotent(lab):
    host = lab.hosts["khs-s1"]
    refused = host.run(["sh", "/tmp/install.sh"], env={"INSTALL_RKE2_VERSION": "latest"}, check=False)
    assert refused.returncode != 0 and "not a pinned RKE2 version" in refused.stderr
    assert host.run(["sh", "/tmp/install.sh"], check=False).returncode != 0  # no version at all

    version = host.run(["sh", "-c", "/usr/local/bin/rke2 --version | awk 'NR==1{print $3}'"]).stdout.strip()
    assert version == VERSION
    for role in ("server", "agent"):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read_string(host.upper_path(f"/usr/local/lib/systemd/system/rke2-{role}.service").read_text())
        assert unit["Service"]["Type"] == "notify"
        assert unit["Service"]["ExecStart"] == f"/usr/local/bin/rke2 {role}"
        assert "Install" in unit and "Unit" in unit
    installed = ["/usr/local/bin/rke2", KUBECTL, "/usr/local/bin/rke2-killall.sh", "/usr/local/bin/rke2-uninstall.sh"]
    before = {p: hashlib.sha256(host.upper_path(p).read_bytes()).hexdigest() for p in installed}
    host.run(["sh", "/tmp/install.sh"], env={"INSTALL_RKE2_VERSION": VERSION, "INSTALL_RKE2_TYPE": "server"})
    after = {p: hashlib.sha256(host.upper_path(p).read_bytes()).hexdigest() for p in installed}
    assert before == after
    assert all(os.access(host.upper_path(p), os.X_OK) for p in installed)


@pytest.mark.parametrize(
    "config, reason",
    [
        ("tls-san: [unclosed\n", "invalid YAML"),
        ({"tls-san": "10.78.0.40"}, "invalid value for tls-san"),
        ({"node-taint": "CriticalAddonsOnly=true:NoExecute"}, "invalid value for node-taint"),
        ({"token": 12345}, "invalid value for token"),
        ({"server": "http://10.78.0.40:9345", "token": "x"}, "must be an https:// URL"),
        ({"node-taint": ["no-effect"]}, "invalid taint spec"),
    ],
)
def test_bad_config_fails_with_reason(lab, config, reason):
    host = lab.hosts["khs-s3"]
    host.write_config(config)
    service = Service(host, "server")
    assert service.wait_exit(15) != 0
    assert "level=fatal" in service.log and reason in service.log, service.log
    assert not host.upper_path("/var/lib/rancher/rke2/server/db/etcd").exists()


def test_bootstrap_writes_token_kubeconfig_and_serves_api(cluster):
    s1 = cluster.hosts["khs-s1"]
    token_file = s1.upper_path("/var/lib/rancher/rke2/server/node-token")
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    match = re.fullmatch(r"K10([0-9a-f]{64})::server:([0-9a-f]{32})", token)
    assert match, token

    kubeconfig_file = s1.upper_path(KUBECONFIG)
    assert kubeconfig_file.stat().st_mode & 0o777 == 0o600
    kubeconfig = yaml.safe_load(kubeconfig_file.read_text())
    cluster_entry = kubeconfig["clusters"][0]["cluster"]
    assert cluster_entry["server"] == "https://127.0.0.1:6443"
    ca_pem = base64.b64decode(cluster_entry["certificate-authority-data"])
    assert hashlib.sha256(ca_pem).hexdigest() == match.group(1)
    assert {"client-certificate-data", "client-key-data"} <= set(kubeconfig["users"][0]["user"])

    # The node name is the lowercased hostname when config sets none.
    line = s1.kubectl("get", "node", "khs-srv1", "--no-headers").stdout.split()
    assert line[:3] == ["khs-srv1", "Ready", "control-plane,etcd,master"] and line[4] == VERSION
    assert s1.kubectl("get", "--raw", "/readyz").stdout == "ok"
    missing = s1.kubectl("get", "node", "nope", "--no-headers", check=False)
    assert missing.returncode == 1 and 'Error from server (NotFound): nodes "nope" not found' in missing.stderr
    # Without the kubeconfig's client certificate the API answers 401.
    code = s1.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:6443/readyz"]).stdout
    assert code == "401"
    assert len(s1.etcd_members()) == 1


def test_wrong_token_is_refused(cluster):
    a1 = cluster.hosts["khs-a1"]
    ca_hash = _server_token(cluster)[3:67]
    a1.write_config({"server": f"https://{VIP}:9345", "token": f"K10{ca_hash}::server:wrongsecret"})
    service = Service(a1, "agent")
    assert service.wait_exit(15) != 0
    assert "401 Unauthorized" in service.log, service.log

    a1.write_config({"server": f"https://{VIP}:9345", "token": f"K10{'0' * 64}::server:whatever"})
    service = Service(a1, "agent")
    assert service.wait_exit(15) != 0
    assert "token CA hash does not match the Cluster CA certificate hash" in service.log, service.log


def test_registration_address_missing_from_sans_fails_with_x509_error(cluster):
    s2 = cluster.hosts["khs-s2"]
    s2.write_config({"server": f"https://{BAD_VIP}:9345", "token": _server_token(cluster)})
    service = Service(s2, "server")
    assert service.wait_exit(15) != 0
    log = service.log
    sans = r"[0-9a-f.:, ]*"
    assert re.search(rf"x509: certificate is valid for {sans}{re.escape(VIP)}{sans}, not {re.escape(BAD_VIP)}", log), log
    # A refused join leaves nothing behind: the next attempt starts clean.
    assert not s2.upper_path("/var/lib/rancher/rke2/server/db/etcd").exists()
    assert len(cluster.hosts["khs-s1"].etcd_members()) == 1


def test_second_server_joins_through_registration_address(cluster):
    s2 = cluster.hosts["khs-s2"]
    s2.write_config({"server": f"https://{VIP}:9345", "token": _server_token(cluster), "tls-san": [VIP],
                     "node-taint": ["CriticalAddonsOnly=true:NoExecute"]})
    cluster.timings["join server 2"] = Service(s2, "server").wait_ready()
    members = cluster.hosts["khs-s1"].etcd_members()
    assert len(members) == 2 and not any(m.get("isLearner") for m in members)
    assert _node_lines(s2)["khs-srv2"][1] == "Ready"
    assert s2.upper_path("/var/lib/rancher/rke2/server/node-token").read_text().strip() == _server_token(cluster)


def test_third_server_joins_with_bare_token(cluster):
    s3 = cluster.hosts["khs-s3"]
    secret = _server_token(cluster).rsplit(":", 1)[1]
    s3.write_config({"server": f"https://{VIP}:9345", "token": secret, "tls-san": [VIP]})
    cluster.timings["join server 3"] = Service(s3, "server").wait_ready(60)
    members = cluster.hosts["khs-s1"].etcd_members()
    assert len(members) == 3 and not any(m.get("isLearner") for m in members)
    nodes = _node_lines(s3)
    assert {n: v[1] for n, v in nodes.items()} == {"khs-srv1": "Ready", "khs-srv2": "Ready", "khs-srv3": "Ready"}


def test_agent_joins(cluster):
    a1 = cluster.hosts["khs-a1"]
    a1.write_config({"server": f"https://{VIP}:9345", "token": _server_token(cluster), "node-name": "agent-one"})
    cluster.timings["join agent"] = Service(a1, "agent").wait_ready()
    line = cluster.hosts["khs-s1"].kubectl("get", "node", "agent-one", "--no-headers").stdout.split()
    assert line[:3] == ["agent-one", "Ready", "<none>"]
    listing = cluster.hosts["khs-s2"].kubectl("get", "--raw", "/api/v1/nodes").stdout
    taints = {n["metadata"]["name"]: n["spec"].get("taints") for n in json.loads(listing)["items"]}
    assert taints["khs-srv2"] == [{"key": "CriticalAddonsOnly", "effect": "NoExecute", "value": "true"}]


def test_stopped_server_turns_notready_and_restarts_from_its_data(cluster):
    s1, s2 = cluster.hosts["khs-s1"], cluster.hosts["khs-s2"]
    running = [s for s in s2.services if s.proc.poll() is None]
    assert len(running) == 1
    assert running[0].stop() == 0, running[0].log
    assert "shutting down" in running[0].log
    assert s2.run(["pgrep", "-x", "etcd"], check=False).returncode == 1  # its etcd went with it
    cluster.timings["NotReady after stop"] = _wait_status(s1, "khs-srv2", "NotReady", 15)

    cluster.timings["restart server 2"] = Service(s2, "server").wait_ready()
    assert "restarting the existing member" in s2.services[-1].log
    assert len(s1.etcd_members()) == 3
    _wait_status(s1, "khs-srv2", "Ready", 10)
