#!/usr/bin/python3
"""RKE2 stand-in for the kube-ha lab: a test double of RKE2's registration contract, NOT RKE2.

It runs no Kubernetes. It reproduces what the kube-ha program relies on when it drives a node:
the config file and its validation, the bootstrap outputs (cluster CA, node-token, admin kubeconfig),
joining through the registration address over TLS with the token (CA hash, SAN and 401 checks as
RKE2 makes them), cluster state in a real etcd joined the way RKE2 joins it (learner, then promoted),
node registration with heartbeats, and an API on 6443 that answers /readyz and the node list.

Installed as /usr/local/bin/rke2 by tests/lab/standin/installer.py. Runs on Debian's /usr/bin/python3
with only the standard library, PyYAML and cryptography. Usage: rke2 --version | rke2 server | rke2 agent.
"""

import sys

VERSION = "@RKE2_VERSION@"  # the installer writes the pinned version here


def print_version():
    print(f"rke2 version {VERSION} (standin)")
    print("test double of RKE2's registration contract for the kube-ha lab, not RKE2")


# rke2-node.sh asks for the version on every run: answer before loading the TLS libraries, which
# cost about 0.15 s of CPU that a dozen joining agents on two cores would take from the servers.
if __name__ == "__main__" and sys.argv[1:2] in ([], ["--version"], ["-v"], ["version"]):
    print_version()
    sys.exit(0)

import base64  # noqa: E402 (after the fast path above)
import datetime
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONFIG_PATH = "/etc/rancher/rke2/config.yaml"
KUBECONFIG_PATH = "/etc/rancher/rke2/rke2.yaml"
DATA_DIR = "/var/lib/rancher/rke2"
SERVER_DIR = DATA_DIR + "/server"
TLS_DIR = SERVER_DIR + "/tls"
ETCD_DATA_DIR = SERVER_DIR + "/db/etcd"
ETCD_LOG = DATA_DIR + "/server/logs/etcd.log"
TOKEN_PATH = SERVER_DIR + "/node-token"
AGENT_TOKEN_PATH = SERVER_DIR + "/agent-token"

SUPERVISOR_PORT = 9345
API_PORT = 6443
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380

HEARTBEAT_SECONDS = 1.5
READY_WITHIN_SECONDS = 6.0  # a node whose last heartbeat is older than this is NotReady
SERVER_ROLES = ["control-plane", "etcd", "master"]
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

# Every wait is bounded. RKE2 itself retries forever; a bounded stand-in fails visibly instead.
JOIN_TIMEOUT = float(os.environ.get("RKE2_STANDIN_JOIN_TIMEOUT", "120"))
ETCD_TIMEOUT = float(os.environ.get("RKE2_STANDIN_ETCD_TIMEOUT", "60"))
# etcd refuses a membership change for about 5 s after the previous one (lab-facts.md).
MEMBER_ADD_RETRY_SECONDS = 15.0

NODES_PREFIX = "/standin/nodes/"
SECRETS_KEY = "/standin/cluster/secrets"


class Fatal(Exception):
    """Logged at level fatal; the service exits 1, as RKE2 does."""


class Stopped(BaseException):
    """SIGTERM/SIGINT: unwind, stop etcd, exit 0."""


class Unreachable(Exception):
    """A peer that may come up later (connection refused, timeout, 5xx while starting)."""


class EtcdError(Exception):
    pass


class JoinRefused(EtcdError):
    """etcd refused the membership change: the joiner fails (409), it does not retry."""


def log(level, message):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sys.stderr.write(f'time="{now}" level={level} msg={json.dumps(message)}\n')
    sys.stderr.flush()


def write_file(path, data, mode=0o600):
    """Atomic, so a reader polling for the file (read-secret-file.sh) never sees half of it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def url_host(ip):
    return f"[{ip}]" if ":" in ip else ip


def etcd_peer_url(identity):
    return f"https://{url_host(identity.ip)}:{ETCD_PEER_PORT}"


# ---------------------------------------------------------------------------------------------------
# Config


class Config:
    def __init__(self, doc, role):
        self.server = _string(doc, "server")
        if self.server is not None:
            parsed = urllib.parse.urlsplit(self.server)
            if parsed.scheme != "https" or not parsed.hostname:
                raise Fatal(f"invalid server URL {self.server!r}: must be an https:// URL with a host")
        self.token = _string(doc, "token")
        token_file = _string(doc, "token-file")
        if self.token is None and token_file:
            try:
                with open(token_file) as handle:
                    self.token = handle.read().strip()
            except OSError as error:
                raise Fatal(f"failed to read token-file: {error}")
        self.agent_token = _string(doc, "agent-token")
        self.node_name = _string(doc, "node-name")
        self.tls_san = _string_list(doc, "tls-san")
        self.node_taints = [parse_taint(t) for t in _string_list(doc, "node-taint")]
        self.node_labels = {}
        for label in _string_list(doc, "node-label"):
            key, sep, value = label.partition("=")
            if not sep or not key:
                raise Fatal(f"invalid node-label {label!r}: want key=value")
            self.node_labels[key] = value
        raw_ip = doc.get("node-ip")
        if raw_ip is None:
            self.node_ips = []
        elif isinstance(raw_ip, str):
            self.node_ips = [part.strip() for part in raw_ip.split(",") if part.strip()]
        elif isinstance(raw_ip, list) and all(isinstance(part, str) for part in raw_ip):
            self.node_ips = raw_ip
        else:
            raise Fatal(f"invalid node-ip {raw_ip!r}: want an IP address or a list of them")
        for ip in self.node_ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise Fatal(f"invalid node-ip {ip!r}: not an IP address")
        mode = doc.get("write-kubeconfig-mode", "0600")
        try:
            # An unquoted 0644 reaches us as YAML's octal integer 420 already.
            self.kubeconfig_mode = mode if isinstance(mode, int) else int(str(mode), 8)
        except ValueError:
            self.kubeconfig_mode = -1
        if not 0 <= self.kubeconfig_mode <= 0o777:
            raise Fatal(f"invalid write-kubeconfig-mode {mode!r}")
        if role == "agent" and not self.server:
            raise Fatal("--server is required")
        if role == "agent" and not self.token:
            raise Fatal("--token is required")


def _string(doc, key):
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise Fatal(f"invalid value for {key} in {CONFIG_PATH}: want a string, got {type(value).__name__}")
    return value


def _string_list(doc, key):
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Fatal(f"invalid value for {key} in {CONFIG_PATH}: want a list of strings, got {value!r}")
    return value


def parse_taint(spec):
    """key[=value]:Effect, as kubelet's --register-with-taints takes it."""
    head, sep, effect = spec.rpartition(":")
    key, _, value = head.partition("=")
    if not sep or not key or effect not in TAINT_EFFECTS:
        raise Fatal(f"invalid taint spec: {spec}")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def load_config(path, role):
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    except OSError as error:
        raise Fatal(f"failed to read {path}: {error}")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise Fatal(f"failed to parse {path}: invalid YAML: {error}")
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise Fatal(f"failed to parse {path}: want a mapping of flags, got {type(doc).__name__}")
    # Unknown keys are accepted: RKE2 has hundreds of flags.
    return Config(doc, role)


def host_addresses():
    """The host's global addresses, IPv4 first, from iproute2 (no other stdlib way to list them)."""
    ip_cmd = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
    found = []
    if ip_cmd:
        try:
            out = subprocess.run([ip_cmd, "-j", "addr", "show", "scope", "global"], capture_output=True, timeout=5, check=True)
            for link in json.loads(out.stdout or b"[]"):
                for info in link.get("addr_info", []):
                    if info.get("local"):
                        found.append(info["local"])
        except (OSError, subprocess.SubprocessError, ValueError):
            found = []
    return sorted(dict.fromkeys(found), key=lambda a: ":" in a)


class Identity:
    def __init__(self, config):
        self.hostname = socket.gethostname().lower()
        self.name = config.node_name or self.hostname
        self.addresses = config.node_ips or host_addresses()
        if not self.addresses:
            raise Fatal("no node address: set node-ip or give the host a global address")
        self.ip = self.addresses[0]


# ---------------------------------------------------------------------------------------------------
# Tokens and certificates


class Token:
    """`K10<sha256 of the CA PEM>::<user>:<password>`, or a bare password."""

    def __init__(self, text):
        self.ca_hash = None
        self.username = None
        self.password = text
        if text.startswith("K10") and "::" in text:
            ca_hash, creds = text[3:].split("::", 1)
            username, sep, password = creds.partition(":")
            if not sep or not password:
                raise Fatal("invalid token format: want K10<hash>::<username>:<password>")
            self.ca_hash, self.username, self.password = ca_hash, username, password


def full_token(ca_pem, username, password):
    return f"K10{hashlib.sha256(ca_pem).hexdigest()}::{username}:{password}"


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
    )


def new_ca():
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"rke2-server-ca@{int(time.time())}")])
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert_pem(cert), key_pem(key)


def issue(ca_pem, ca_key_pem, common_name, *, sans=(), organization=None, server=True, client=False):
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    key = new_key()
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        _builder(x509.Name(attrs), ca.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    names = []
    for san in dict.fromkeys(sans):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return cert_pem(builder.sign(ca_key, hashes.SHA256())), key_pem(key)


def check_host(der, host):
    """Go's crypto/x509 hostname check, with its error text, which is what an operator greps for."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips, dns = san.get_values_for_type(x509.IPAddress), san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        ips, dns = [], []
    try:
        wanted = ipaddress.ip_address(host)
    except ValueError:
        wanted = None
    if wanted is not None:
        if wanted in ips:
            return
        if not ips:
            raise Fatal(f"x509: cannot validate certificate for {host} because it doesn't contain any IP SANs")
        valid = ", ".join(str(ip) for ip in ips)
    else:
        host_l = host.lower().rstrip(".")
        for name in dns:
            name = name.lower()
            if name == host_l or (name.startswith("*.") and host_l.split(".", 1)[-1] == name[2:] and "." in host_l):
                return
        valid = ", ".join(dns)
    if not valid:
        raise Fatal(f"x509: certificate is not valid for any names, but wanted to match {host}")
    raise Fatal(f"x509: certificate is valid for {valid}, not {host}")


class Pki:
    """The server's certificate files. One CA signs everything (RKE2 has several; one is enough here)."""

    ca_crt = TLS_DIR + "/server-ca.crt"
    ca_key = TLS_DIR + "/server-ca.key"
    serving_crt = TLS_DIR + "/serving-kube-apiserver.crt"
    serving_key = TLS_DIR + "/serving-kube-apiserver.key"
    etcd_crt = TLS_DIR + "/etcd/server-client.crt"
    etcd_key = TLS_DIR + "/etcd/server-client.key"
    admin_crt = TLS_DIR + "/client-admin.crt"
    admin_key = TLS_DIR + "/client-admin.key"

    def __init__(self, ca_pem, ca_key_pem):
        self.ca_pem, self.ca_key_pem = ca_pem, ca_key_pem

    @classmethod
    def load(cls):
        try:
            with open(cls.ca_crt, "rb") as crt, open(cls.ca_key, "rb") as key:
                return cls(crt.read(), key.read())
        except OSError as error:
            raise Fatal(f"etcd data exists but the cluster CA is missing: {error}")

    def write_all(self, identity, tls_san):
        write_file(self.ca_crt, self.ca_pem, 0o644)
        write_file(self.ca_key, self.ca_key_pem)
        # Regenerated on every start so a changed tls-san takes effect, as RKE2's dynamic listener does.
        sans = [*identity.addresses, identity.hostname, identity.name, "localhost", "127.0.0.1", "::1",
                "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
                *tls_san]
        for crt, key, pair in (
            (self.serving_crt, self.serving_key, issue(self.ca_pem, self.ca_key_pem, "kube-apiserver", sans=sans)),
            (self.etcd_crt, self.etcd_key, issue(self.ca_pem, self.ca_key_pem, f"etcd-{identity.name}",
                                                 sans=[identity.ip, "127.0.0.1", "localhost"], client=True)),
            (self.admin_crt, self.admin_key, issue(self.ca_pem, self.ca_key_pem, "system:admin",
                                                   organization="system:masters", server=False, client=True)),
        ):
            write_file(crt, pair[0], 0o644)
            write_file(key, pair[1])

    def kubeconfig(self):
        def b64(path):
            with open(path, "rb") as handle:
                return base64.b64encode(handle.read()).decode()

        doc = {
            "apiVersion": "v1",
            "clusters": [{"cluster": {"certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                                      "server": f"https://127.0.0.1:{API_PORT}"}, "name": "default"}],
            "contexts": [{"context": {"cluster": "default", "user": "default"}, "name": "default"}],
            "current-context": "default",
            "kind": "Config",
            "preferences": {},
            "users": [{"name": "default", "user": {"client-certificate-data": b64(self.admin_crt),
                                                   "client-key-data": b64(self.admin_key)}}],
        }
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)

    def etcd_client_context(self):
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        ctx.load_cert_chain(self.etcd_crt, self.etcd_key)
        return ctx


# ---------------------------------------------------------------------------------------------------
# etcd: a real etcd process, spoken to through its JSON gateway (no etcdctl process per call)


def _b64(text):
    return base64.b64encode(text.encode()).decode()


class EtcdClient:
    def __init__(self, url, ctx):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port, self.ctx = parsed.hostname, parsed.port, ctx

    def call(self, path, body, timeout=5.0):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as error:
            raise EtcdError(f"{self.host}:{self.port}: {error}")
        finally:
            conn.close()
        try:
            doc = json.loads(data or b"{}")
        except ValueError:
            raise EtcdError(f"etcd answered {resp.status}: {data[:200]!r}")
        if resp.status != 200 or "error" in doc:
            raise EtcdError(doc.get("message") or doc.get("error") or f"HTTP {resp.status}")
        return doc

    def put(self, key, value):
        self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def get(self, key):
        kvs = self.call("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs and "value" in kvs[0] else None

    def get_prefix(self, prefix):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        kvs = self.call("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(end)}).get("kvs", [])
        return [base64.b64decode(kv.get("value", "")).decode() for kv in kvs]

    def members(self):
        return self.call("/v3/cluster/member/list", {}).get("members", [])

    def member_add_learner(self, peer_url):
        return self.call("/v3/cluster/member/add", {"peerURLs": [peer_url], "isLearner": True})

    def member_remove(self, member_id):
        self.call("/v3/cluster/member/remove", {"ID": member_id})

    def member_promote(self, member_id):
        self.call("/v3/cluster/member/promote", {"ID": member_id})

    def status(self):
        return self.call("/v3/maintenance/status", {}, timeout=2.0)

    def healthy(self):
        """Like `etcdctl endpoint health`: a linearizable read succeeds."""
        self.call("/v3/kv/range", {"key": _b64("health")}, timeout=3.0)
        return True


class EtcdProcess:
    def __init__(self, identity, pki):
        self.identity, self.pki, self.proc = identity, pki, None
        self.peer_url = etcd_peer_url(identity)

    def start(self, initial_cluster=None, state=None):
        binary = shutil.which("etcd", path="/usr/local/bin:/usr/bin:/bin")
        if not binary:
            raise Fatal("etcd not found (install etcd-server)")
        host = url_host(self.identity.ip)
        p = self.pki
        args = [
            binary, f"--name={self.identity.name}", f"--data-dir={ETCD_DATA_DIR}",
            f"--listen-client-urls=https://{host}:{ETCD_CLIENT_PORT},https://127.0.0.1:{ETCD_CLIENT_PORT}",
            f"--advertise-client-urls=https://{host}:{ETCD_CLIENT_PORT}",
            f"--listen-peer-urls={self.peer_url}", f"--initial-advertise-peer-urls={self.peer_url}",
            f"--cert-file={p.etcd_crt}", f"--key-file={p.etcd_key}", f"--trusted-ca-file={p.ca_crt}",
            "--client-cert-auth=true",
            f"--peer-cert-file={p.etcd_crt}", f"--peer-key-file={p.etcd_key}", f"--peer-trusted-ca-file={p.ca_crt}",
            "--peer-client-cert-auth=true",
            "--pre-vote=true", "--logger=zap", "--log-outputs=stderr",
        ]
        if initial_cluster:
            args += [f"--initial-cluster={initial_cluster}", f"--initial-cluster-state={state}"]
        os.makedirs(os.path.dirname(ETCD_DATA_DIR), mode=0o700, exist_ok=True)
        os.makedirs(os.path.dirname(ETCD_LOG), exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        log("info", f"starting etcd ({state or 'existing data'}) peer {self.peer_url}")
        with open(ETCD_LOG, "ab") as out:
            # Same process group: `systemctl stop` signals the group, as systemd would signal the cgroup.
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise Fatal(f"etcd exited with status {self.proc.returncode}: {self.tail()}")

    def tail(self, lines=5):
        try:
            with open(ETCD_LOG, "rb") as handle:
                handle.seek(max(0, os.path.getsize(ETCD_LOG) - 8192))
                text = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no etcd log)"
        return " | ".join(text[-lines:])

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=8)  # under systemctl's 10 s SIGKILL
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def wait_for(seconds, what, probe, etcd=None):
    """Polls `probe` until it returns a true value; bounded by time, fails fast if etcd died."""
    deadline = time.monotonic() + seconds
    last = None
    while True:
        if etcd is not None:
            etcd.check_alive()
        try:
            result = probe()
            if result:
                return result
        except EtcdError as error:
            last = error
        if time.monotonic() >= deadline:
            raise Fatal(f"timed out after {seconds:.0f}s waiting for {what}: {last}")
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------------
# Talking to a server's supervisor port (9345), as a joining server or an agent


class SupervisorClient:
    def __init__(self, url, token, default_user):
        parsed = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.host, self.port = parsed.hostname, parsed.port or 443
        self.token = Token(token)
        self.username = self.token.username or default_user
        self.ca_pem = None

    def fetch_ca(self):
        """GET /cacerts without verification (there is no CA yet), then pin it against the token's hash."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        status, body = self._request(ctx, "GET", "/cacerts", None, auth=False)
        if status != 200:
            raise Unreachable(f"GET {self.url}/cacerts: HTTP {status}")
        if self.token.ca_hash is not None:
            actual = hashlib.sha256(body).hexdigest()
            if not hmac.compare_digest(actual, self.token.ca_hash):
                raise Fatal(f"token CA hash does not match the Cluster CA certificate hash: {self.token.ca_hash} != {actual}")
        self.ca_pem = body
        return body

    def post(self, path, doc, timeout=30.0):
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        # Checked by hand below, to fail with Go's x509 message rather than Python's.
        ctx.check_hostname = False
        status, body = self._request(ctx, "POST", path, json.dumps(doc).encode(), auth=True, timeout=timeout)
        if status == 401:
            raise Fatal(f"failed to authenticate to {self.url}{path}: 401 Unauthorized: the token is not valid for this cluster")
        if status >= 500:
            raise Unreachable(f"POST {self.url}{path}: HTTP {status}: {body.decode(errors='replace').strip()}")
        if status != 200:
            raise Fatal(f"POST {self.url}{path}: HTTP {status}: {body.decode(errors='replace').strip()}")
        return json.loads(body)

    def _request(self, ctx, method, path, body, auth, timeout=10.0):
        conn = http.client.HTTPSConnection(self.host, self.port, context=ctx, timeout=timeout)
        try:
            try:
                conn.connect()
            except ssl.SSLCertVerificationError as error:
                raise Fatal(f"{method.capitalize()} \"{self.url}{path}\": tls: failed to verify certificate: "
                            f"x509: certificate signed by unknown authority ({error.verify_message})")
            if ctx.verify_mode == ssl.CERT_REQUIRED:
                try:
                    check_host(conn.sock.getpeercert(binary_form=True), self.host)
                except Fatal as error:
                    # Go's net/http wording, e.g. Post "https://...": tls: failed to verify certificate: x509: ...
                    raise Fatal(f"{method.capitalize()} \"{self.url}{path}\": tls: failed to verify certificate: {error}")
            headers = {"Content-Type": "application/json"}
            if auth:
                creds = base64.b64encode(f"{self.username}:{self.token.password}".encode()).decode()
                headers["Authorization"] = f"Basic {creds}"
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as error:
            raise Unreachable(f"{method} {self.url}{path}: {error}")
        finally:
            conn.close()


def retry_unreachable(seconds, what, call):
    deadline = time.monotonic() + seconds
    delay = 0.5
    while True:
        try:
            return call()
        except Unreachable as error:
            if time.monotonic() >= deadline:
                raise Fatal(f"{what}: {error} (gave up after {seconds:.0f}s)")
            log("info", f"{what}: {error}; retrying")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def validate_connection(client):
    """CA fetch and pin, with RKE2's message prefix for a join that cannot reach or trust the server."""
    try:
        retry_unreachable(JOIN_TIMEOUT, f"failed to get CA certs from {client.url}", client.fetch_ca)
    except Fatal as error:
        raise Fatal(f"Failed to validate connection to cluster at {client.url}: {error}")


# ---------------------------------------------------------------------------------------------------
# HTTPS listeners


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, ctx, node):
        self.ctx, self.node = ctx, node
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # The handshake runs in the request's thread, so a silent client (a load balancer's TCP
        # check) never blocks the accept loop.
        request.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass  # clients that hang up mid-request are normal behind a load balancer


class TLSServer6(TLSServer):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    server_version = "rke2-standin"

    def log_message(self, *args):
        pass  # heartbeats would flood the unit log

    def do_GET(self):
        self.server.node.route(self, "GET")

    def do_POST(self):
        self.server.node.route(self, "POST")

    def body_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return None

    def reply(self, code, body, content_type="application/json"):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def status(self, code, reason, message):
        self.reply(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "code": code})


# ---------------------------------------------------------------------------------------------------
# Nodes as the API shows them


def node_record(name, roles, config, version, addresses, hostname):
    return {"name": name, "roles": roles, "taints": config.node_taints, "labels": config.node_labels,
            "version": version, "addresses": addresses, "hostname": hostname}


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(record, now):
    labels = {"kubernetes.io/hostname": record["name"], "kubernetes.io/os": "linux"}
    labels.update({f"node-role.kubernetes.io/{role}": "true" for role in record["roles"]})
    labels.update(record.get("labels") or {})
    ready = now - record["heartbeat"] < READY_WITHIN_SECONDS
    addresses = [{"type": "InternalIP", "address": a} for a in record["addresses"][:1]]
    addresses.append({"type": "Hostname", "address": record["hostname"]})
    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": record["name"], "labels": labels, "creationTimestamp": rfc3339(record["created"])},
        "spec": {"taints": record["taints"]} if record["taints"] else {},
        "status": {
            "conditions": [{
                "type": "Ready",
                "status": "True" if ready else "Unknown",
                "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                "message": "stand-in heartbeat is recent" if ready else "Kubelet stopped posting node status.",
                "lastHeartbeatTime": rfc3339(record["heartbeat"]),
            }],
            "addresses": addresses,
            "nodeInfo": {"kubeletVersion": record["version"]},
        },
    }


# ---------------------------------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, config, identity):
        self.config, self.identity = config, identity
        self.pki = None
        self.etcd = None
        self.client = None
        self.server_secret = None
        self.agent_secret = None
        self.listeners = []
        self.stop_event = threading.Event()
        self.created = None

    def run(self):
        have_data = os.path.isdir(os.path.join(ETCD_DATA_DIR, "member"))
        if have_data:
            self.restart()
        elif self.config.server:
            self.join()
        else:
            self.bootstrap()
        self.finish_start()
        while True:
            time.sleep(0.5)
            self.etcd.check_alive()

    def start_etcd(self, initial_cluster=None, state=None):
        self.etcd = EtcdProcess(self.identity, self.pki)
        self.etcd.start(initial_cluster, state)
        self.client = EtcdClient(f"https://127.0.0.1:{ETCD_CLIENT_PORT}", self.pki.etcd_client_context())

    def bootstrap(self):
        log("info", "no server URL and no etcd data: bootstrapping a new cluster")
        self.pki = Pki(*new_ca())
        self.pki.write_all(self.identity, self.config.tls_san)
        self.start_etcd(f"{self.identity.name}={etcd_peer_url(self.identity)}", "new")
        wait_for(ETCD_TIMEOUT, "etcd to become healthy", self.client.healthy, self.etcd)
        self.store_new_secrets()

    def store_new_secrets(self):
        self.server_secret = Token(self.config.token).password if self.config.token else secrets.token_hex(16)
        self.agent_secret = Token(self.config.agent_token).password if self.config.agent_token else None
        self.client.put(SECRETS_KEY, json.dumps({"server": self.server_secret, "agent": self.agent_secret}))

    def join(self):
        supervisor = SupervisorClient(self.config.server, self.config.token, "server")
        validate_connection(supervisor)
        log("info", f"joining the cluster through {supervisor.url}")
        request = {"name": self.identity.name, "peerURL": etcd_peer_url(self.identity)}
        try:
            answer = retry_unreachable(JOIN_TIMEOUT, "server join", lambda: supervisor.post("/v1-standin/server-join", request))
        except Fatal as error:
            raise Fatal(f"failed to join the cluster through {supervisor.url}: {error}")
        self.pki = Pki(answer["caCert"].encode(), answer["caKey"].encode())
        self.pki.write_all(self.identity, self.config.tls_san)
        self.server_secret, self.agent_secret = answer["serverSecret"], answer["agentSecret"]
        self.start_etcd(answer["initialCluster"], "existing")
        wait_for(ETCD_TIMEOUT, "etcd to start as a learner", self.client.status, self.etcd)
        self.promote(answer["memberID"], answer["clientURLs"])
        wait_for(ETCD_TIMEOUT, "etcd to become healthy", self.client.healthy, self.etcd)

    def promote(self, member_id, client_urls):
        """A learner becomes a voter once in sync; RKE2's leader does this, here the joiner asks."""
        clients = [EtcdClient(url, self.pki.etcd_client_context()) for url in client_urls]

        def try_promote():
            errors = []
            for client in clients:
                try:
                    client.member_promote(member_id)
                    return True
                except EtcdError as error:
                    if "can only promote a learner member" == str(error).replace("etcdserver: ", ""):
                        return True  # already a voter (a restart after promotion)
                    errors.append(str(error))
            raise EtcdError("; ".join(errors))

        wait_for(ETCD_TIMEOUT, "promotion from etcd learner to voter", try_promote, self.etcd)
        log("info", "etcd member promoted to voter")

    def restart(self):
        log("info", "etcd data found: restarting the existing member")
        self.pki = Pki.load()
        self.pki.write_all(self.identity, self.config.tls_san)
        self.start_etcd()
        status = wait_for(ETCD_TIMEOUT, "etcd to start", self.client.status, self.etcd)
        if status.get("isLearner"):
            me = status["header"]["member_id"]
            urls = [u for m in self.client.members() if m["ID"] != me for u in m.get("clientURLs", [])]
            self.promote(me, urls)
        wait_for(ETCD_TIMEOUT, "etcd to become healthy", self.client.healthy, self.etcd)
        stored = json.loads(self.client.get(SECRETS_KEY) or "{}")
        self.server_secret, self.agent_secret = stored.get("server"), stored.get("agent")
        if not self.server_secret and not self.config.server:
            # A bootstrap stopped between starting etcd and storing the secrets: finish it.
            log("info", "etcd holds no cluster secrets yet: completing the bootstrap")
            self.store_new_secrets()
        elif not self.server_secret:
            raise Fatal("etcd holds no cluster secrets: the data directory is not from this stand-in")
        if self.config.token and Token(self.config.token).password != self.server_secret:
            raise Fatal("bootstrap data already found and encrypted with different token")

    def finish_start(self):
        write_file(TOKEN_PATH, full_token(self.pki.ca_pem, "server", self.server_secret))
        if self.agent_secret:
            write_file(AGENT_TOKEN_PATH, full_token(self.pki.ca_pem, "node", self.agent_secret))
        write_file(KUBECONFIG_PATH, self.pki.kubeconfig(), self.config.kubeconfig_mode)
        existing = json.loads(self.client.get(NODES_PREFIX + self.identity.name) or "{}")
        self.created = existing.get("created", time.time())
        self.heartbeat()
        threading.Thread(target=self.heartbeat_loop, daemon=True).start()

        supervisor_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        supervisor_ctx.load_cert_chain(Pki.serving_crt, Pki.serving_key)
        api_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        api_ctx.load_cert_chain(Pki.serving_crt, Pki.serving_key)
        # Optional so a request without a client certificate gets a 401, as kube-apiserver answers.
        api_ctx.verify_mode = ssl.CERT_OPTIONAL
        api_ctx.load_verify_locations(cadata=self.pki.ca_pem.decode())
        addresses = list(dict.fromkeys([*self.identity.addresses, "127.0.0.1"]))
        for port, ctx in ((SUPERVISOR_PORT, supervisor_ctx), (API_PORT, api_ctx)):
            for address in addresses:
                cls = TLSServer6 if ":" in address else TLSServer
                try:
                    listener = cls((address, port), Handler, ctx, self)
                except OSError as error:
                    raise Fatal(f"failed to listen on {url_host(address)}:{port}: {error}")
                listener.port = port
                threading.Thread(target=listener.serve_forever, daemon=True).start()
                self.listeners.append(listener)
        log("info", f"rke2 server {self.identity.name} is up: supervisor :{SUPERVISOR_PORT}, "
                    f"API :{API_PORT} on {', '.join(addresses)}")
        notify_ready()

    def heartbeat(self):
        record = node_record(self.identity.name, SERVER_ROLES, self.config, VERSION, self.identity.addresses,
                             self.identity.hostname)
        record.update(created=self.created, heartbeat=time.time())
        self.client.put(NODES_PREFIX + self.identity.name, json.dumps(record))

    def heartbeat_loop(self):
        failing = False
        while not self.stop_event.wait(HEARTBEAT_SECONDS):
            try:
                self.heartbeat()
                if failing:
                    log("info", "node heartbeat written again")
                failing = False
            except EtcdError as error:
                if not failing:
                    log("warning", f"node heartbeat failed (the node will turn NotReady): {error}")
                failing = True

    def shutdown(self):
        self.stop_event.set()
        stoppers = [threading.Thread(target=listener.shutdown, daemon=True) for listener in self.listeners]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(timeout=2)
        if self.etcd is not None:
            self.etcd.stop()

    # --- requests -----------------------------------------------------------------------------------

    def route(self, req, method):
        path = urllib.parse.urlsplit(req.path).path
        if req.server.port == SUPERVISOR_PORT:
            self.route_supervisor(req, method, path)
        else:
            self.route_api(req, method, path)

    def authenticate(self, req):
        """Basic auth with the token's password: the server token allows everything, the agent token nodes only."""
        header = req.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            _, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if self.server_secret and hmac.compare_digest(password, self.server_secret):
            return "server"
        if self.agent_secret and hmac.compare_digest(password, self.agent_secret):
            return "node"
        return None

    def route_supervisor(self, req, method, path):
        if method == "GET" and path == "/cacerts":
            return req.reply(200, self.pki.ca_pem, "text/plain")
        if method == "GET" and path == "/ping":
            return req.reply(200, "pong", "text/plain")
        # Read before any answer: closing with unread request bytes resets the connection, and the
        # client would see a reset instead of the 401.
        body = req.body_json() if method == "POST" else None
        if method != "POST" or path not in ("/v1-standin/server-join", "/v1-standin/nodes"):
            return req.reply(404, {"error": "not found"})
        role = self.authenticate(req)
        if role is None or (path == "/v1-standin/server-join" and role != "server"):
            return req.reply(401, {"error": "Unauthorized"})
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return req.reply(400, {"error": "bad request"})
        try:
            if path == "/v1-standin/server-join":
                return req.reply(200, self.handle_join(body))
            return req.reply(200, self.handle_agent(body))
        except JoinRefused as error:
            return req.reply(409, {"error": str(error)})
        except EtcdError as error:
            return req.reply(503, {"error": str(error)})

    def handle_join(self, body):
        """RKE2's server join: add the new server to etcd as a learner and hand it what it needs to serve."""
        name, peer_url = body["name"], body["peerURL"]
        for member in self.client.members():
            # A server rejoining with wiped data reuses its peer URL; the stale entry must go first.
            if peer_url in member.get("peerURLs", []):
                log("info", f"removing stale etcd member {member.get('name') or member['ID']} at {peer_url}")
                self.client.member_remove(member["ID"])
        deadline = time.monotonic() + MEMBER_ADD_RETRY_SECONDS
        while True:
            try:
                added = self.client.member_add_learner(peer_url)
                break
            except EtcdError as error:
                if "unhealthy cluster" not in str(error) or time.monotonic() >= deadline:
                    log("warning", f"etcd member add for {name} failed: {error}")
                    raise JoinRefused(f"etcd member add failed: {error}")
                time.sleep(0.5)
        new_id = added["member"]["ID"]
        # The list `etcdctl member add` prints as ETCD_INITIAL_CLUSTER, unnamed (unstarted) members included.
        initial = ",".join(f"{name if m['ID'] == new_id else m.get('name', '')}={u}"
                           for m in added["members"] for u in m.get("peerURLs", []))
        client_urls = [u for m in added["members"] if m["ID"] != new_id for u in m.get("clientURLs", [])]
        log("info", f"added {name} to etcd as a learner ({peer_url})")
        return {"caCert": self.pki.ca_pem.decode(), "caKey": self.pki.ca_key_pem.decode(),
                "serverSecret": self.server_secret, "agentSecret": self.agent_secret,
                "initialCluster": initial, "memberID": new_id, "clientURLs": client_urls}

    def handle_agent(self, body):
        """Agent registration and heartbeat in one upsert; the answer lists servers to fail over to."""
        key = NODES_PREFIX + body["name"]
        existing = json.loads(self.client.get(key) or "{}")
        if existing and existing.get("roles"):
            raise EtcdError(f"node {body['name']} is registered as a server")
        now = time.time()
        record = {"name": body["name"], "roles": [], "taints": body.get("taints") or [],
                  "labels": body.get("labels") or {}, "version": str(body.get("version", "")),
                  "addresses": body.get("addresses") or [], "hostname": str(body.get("hostname", body["name"])),
                  "created": existing.get("created", now), "heartbeat": now}
        if not existing:
            log("info", f"agent {body['name']} registered")
        self.client.put(key, json.dumps(record))
        servers = [json.loads(v) for v in self.client.get_prefix(NODES_PREFIX)]
        return {"servers": [r["addresses"][0] for r in servers if r.get("roles") and r.get("addresses")]}

    def route_api(self, req, method, path):
        if not req.connection.getpeercert():
            return req.status(401, "Unauthorized", "Unauthorized")
        if method != "GET":
            return req.status(405, "MethodNotAllowed", "the stand-in API is read-only")
        if path in ("/readyz", "/livez", "/healthz"):
            try:
                self.client.healthy()
            except EtcdError as error:
                return req.reply(500, f"[-]etcd failed: {error}\n{path[1:]} check failed\n", "text/plain")
            return req.reply(200, "ok", "text/plain")
        if path == "/version":
            return req.reply(200, {"major": "1", "minor": VERSION.split(".")[1] if "." in VERSION else "",
                                   "gitVersion": VERSION, "platform": "linux/amd64"})
        if path == "/api/v1/nodes" or path.startswith("/api/v1/nodes/"):
            try:
                records = [json.loads(v) for v in self.client.get_prefix(NODES_PREFIX)]
            except EtcdError as error:
                return req.status(503, "ServiceUnavailable", f"etcdserver: {error}")
            now = time.time()
            nodes = {r["name"]: node_object(r, now) for r in records}
            if path == "/api/v1/nodes":
                return req.reply(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {},
                                       "items": [nodes[n] for n in sorted(nodes)]})
            name = path[len("/api/v1/nodes/"):]
            if name in nodes:
                return req.reply(200, nodes[name])
            return req.status(404, "NotFound", f'nodes "{name}" not found')
        return req.status(404, "NotFound", "the server could not find the requested resource")


# ---------------------------------------------------------------------------------------------------
# The agent


def run_agent(config, identity):
    client = SupervisorClient(config.server, config.token, "node")
    validate_connection(client)
    record = node_record(identity.name, [], config, VERSION, identity.addresses, identity.hostname)
    try:
        answer = retry_unreachable(JOIN_TIMEOUT, "agent registration", lambda: client.post("/v1-standin/nodes", record))
    except Fatal as error:
        raise Fatal(f"failed to register with {client.url}: {error}")
    servers = answer.get("servers", [])
    log("info", f"agent {identity.name} registered through {client.url}")
    notify_ready()
    failing = set()  # URLs whose failure is logged already: one line per outage, not per heartbeat
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        # The registration address first; any known server if it is down (the agent's own load balancer).
        urls = [config.server] + [f"https://{url_host(ip)}:{SUPERVISOR_PORT}" for ip in servers]
        for url in dict.fromkeys(urls):
            target = client if url == config.server else SupervisorClient(url, config.token, "node")
            target.ca_pem = client.ca_pem
            try:
                servers = target.post("/v1-standin/nodes", record, timeout=5).get("servers", servers)
            except (Unreachable, Fatal) as error:
                if url not in failing:
                    log("warning", f"heartbeat through {url} failed: {error}")
                    failing.add(url)
                continue
            if url in failing:
                log("info", f"heartbeat through {url} works again")
                failing.discard(url)
            break


# ---------------------------------------------------------------------------------------------------


def notify_ready():
    ready_file = os.environ.get("LAB_READY_FILE")
    if ready_file:
        os.makedirs(os.path.dirname(ready_file) or ".", exist_ok=True)
        with open(ready_file, "w") as handle:
            handle.write(f"{os.getpid()}\n")
    notify_socket = os.environ.get("NOTIFY_SOCKET")
    if notify_socket:
        address = "\0" + notify_socket[1:] if notify_socket.startswith("@") else notify_socket
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"READY=1", address)


def _on_signal(signum, frame):
    raise Stopped()


def main(argv):
    if not argv or argv[0] in ("--version", "-v", "version"):
        print_version()
        return 0
    role, rest = argv[0], argv[1:]
    if role not in ("server", "agent"):
        sys.stderr.write(f"rke2 (stand-in): unknown command {role!r}; want server, agent or --version\n")
        return 2
    config_path = CONFIG_PATH
    while rest:
        flag = rest.pop(0)
        if flag in ("--config", "-c") and rest:
            config_path = rest.pop(0)
        elif flag.startswith("--config="):
            config_path = flag.split("=", 1)[1]
        else:
            sys.stderr.write(f"rke2 (stand-in): unsupported flag {flag!r}; put settings in {CONFIG_PATH}\n")
            return 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    log("info", f"Starting rke2 {VERSION} (standin: a test double of RKE2's registration contract, not RKE2)")
    server = None
    try:
        config = load_config(config_path, role)
        identity = Identity(config)
        log("info", f"node {identity.name}, address {identity.ip}")
        if role == "server":
            server = Server(config, identity)
            server.run()
        else:
            run_agent(config, identity)
    except Stopped:
        log("info", "received SIGTERM, shutting down")
        return 0
    except Fatal as error:
        log("fatal", str(error))
        return 1
    finally:
        if server is not None:
            # Signals stay pending until etcd is down, so a second SIGTERM cannot orphan it.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
