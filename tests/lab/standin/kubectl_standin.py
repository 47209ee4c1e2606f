#!/usr/bin/python3
"""kubectl stand-in for the kube-ha lab: a test double, NOT kubectl.

Talks to the RKE2 stand-in's API with a kubeconfig's CA and client certificate, and prints what the
program's scripts parse, the way kubectl prints it:
  kubectl [--kubeconfig F] get nodes [NAME...] [--no-headers] [-o wide|name|json]
  kubectl [--kubeconfig F] get node NAME ...
  kubectl [--kubeconfig F] get --raw PATH
  kubectl version --client
Installed as /var/lib/rancher/rke2/bin/kubectl by tests/lab/standin/installer.py.
"""

import base64
import datetime
import http.client
import json
import os
import ssl
import sys
import tempfile
import urllib.parse

import yaml

CLIENT_VERSION = "@RKE2_VERSION@"


class Failure(Exception):
    pass


def parse_args(argv):
    opts = {"kubeconfig": os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config"),
            "output": "", "no_headers": False, "raw": None, "timeout": 10.0}
    words = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        takes_value = name in ("--kubeconfig", "-o", "--output", "--raw", "--request-timeout")
        if takes_value and not eq:
            if not args:
                raise Failure(f"error: flag needs an argument: {name}")
            value = args.pop(0)
        if name == "--kubeconfig":
            opts["kubeconfig"] = value
        elif name in ("-o", "--output"):
            opts["output"] = value
        elif name == "--raw":
            opts["raw"] = value
        elif name == "--request-timeout":
            opts["timeout"] = float(value.rstrip("s") or 0) or 10.0
        elif arg == "--no-headers":
            opts["no_headers"] = True
        elif arg.startswith("-o") and len(arg) > 2:
            opts["output"] = arg[2:]
        elif arg == "--client":
            opts["client"] = True
        elif arg.startswith("-"):
            raise Failure(f"error: unknown flag: {arg} (kubectl stand-in)")
        else:
            words.append(arg)
    return words, opts


class Api:
    def __init__(self, kubeconfig_path, timeout):
        try:
            with open(kubeconfig_path) as handle:
                doc = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError) as error:
            raise Failure(f"error: error loading config file \"{kubeconfig_path}\": {error}")
        try:
            context_name = doc["current-context"]
            context = next(c["context"] for c in doc["contexts"] if c["name"] == context_name)
            cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
            user = next(u["user"] for u in doc["users"] if u["name"] == context["user"])
        except (KeyError, TypeError, StopIteration):
            raise Failure("error: invalid configuration: no usable context in kubeconfig")
        self.server = cluster["server"]
        parsed = urllib.parse.urlsplit(self.server)
        self.host, self.port = parsed.hostname, parsed.port or 443
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        if "client-certificate-data" in user:
            # ssl loads a certificate chain from files only; a private directory keeps the key unreadable.
            with tempfile.TemporaryDirectory(prefix="kubectl-standin-") as tmp:
                crt, key = os.path.join(tmp, "crt"), os.path.join(tmp, "key")
                for path, field in ((crt, "client-certificate-data"), (key, "client-key-data")):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(base64.b64decode(user[field]))
                self.ctx.load_cert_chain(crt, key)

    def get(self, path):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except ConnectionRefusedError:
            raise Failure(f"The connection to the server {self.host}:{self.port} was refused"
                          " - did you specify the right host or port?")
        except ssl.SSLCertVerificationError as error:
            raise Failure(f"Unable to connect to the server: tls: failed to verify certificate: {error.verify_message}")
        except (OSError, http.client.HTTPException) as error:
            raise Failure(f"Unable to connect to the server: {error}")
        finally:
            conn.close()


def api_error(status, body):
    if status == 401:
        return "error: You must be logged in to the server (Unauthorized)"
    try:
        doc = json.loads(body)
        return f"Error from server ({doc.get('reason') or 'InternalError'}): {doc.get('message', '')}"
    except ValueError:
        return f"Error from server (InternalError): {body.decode(errors='replace').strip()}"


def human_age(seconds):
    """kubectl's duration.HumanDuration, the AGE column."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    return f"{d}d{h % 24}h" if d < 8 and h % 24 else f"{d}d"


def node_row(node, wide):
    meta, status = node["metadata"], node["status"]
    ready = next((c["status"] for c in status.get("conditions", []) if c["type"] == "Ready"), "Unknown")
    state = "Ready" if ready == "True" else "NotReady"
    if node.get("spec", {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in meta.get("labels", {}) if k.startswith("node-role.kubernetes.io/"))
    created = datetime.datetime.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    age = human_age((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds())
    row = [meta["name"], state, ",".join(roles) or "<none>", age, status.get("nodeInfo", {}).get("kubeletVersion", "")]
    if wide:
        internal = next((a["address"] for a in status.get("addresses", []) if a["type"] == "InternalIP"), "<none>")
        row += [internal, "<none>", "RKE2 stand-in", "standin", "standin"]
    return row


def print_table(rows, headers, no_headers):
    if not no_headers:
        rows = [headers] + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    for r in rows:
        print("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())


def get_nodes(api, names, opts):
    if names:
        nodes, errors = [], []
        for name in names:
            status, body = api.get(f"/api/v1/nodes/{urllib.parse.quote(name)}")
            if status == 200:
                nodes.append(json.loads(body))
            elif status == 404:
                errors.append(api_error(status, body))
            else:
                raise Failure(api_error(status, body))
    else:
        status, body = api.get("/api/v1/nodes")
        if status != 200:
            raise Failure(api_error(status, body))
        nodes, errors = json.loads(body).get("items", []), []
    out = opts["output"]
    if out == "json":
        doc = nodes[0] if len(names) == 1 and nodes else {"apiVersion": "v1", "kind": "List", "items": nodes}
        print(json.dumps(doc, indent=4))
    elif out == "name":
        for node in nodes:
            print(f"node/{node['metadata']['name']}")
    elif out in ("", "wide"):
        wide = out == "wide"
        headers = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        if wide:
            headers += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        if nodes:
            print_table([node_row(n, wide) for n in nodes], headers, opts["no_headers"])
        elif not names:
            sys.stderr.write("No resources found\n")
    else:
        raise Failure(f"error: unable to match a printer suitable for the output format \"{out}\" (kubectl stand-in)")
    for error in errors:
        sys.stderr.write(error + "\n")
    return 1 if errors else 0


def main(argv):
    try:
        words, opts = parse_args(argv)
        if words[:1] == ["version"]:
            print(f"Client Version: {CLIENT_VERSION} (kubectl stand-in)")
            return 0
        if words[:1] != ["get"]:
            raise Failure(f"error: the kubectl stand-in supports only get and version, not {' '.join(words) or '(nothing)'}")
        api = Api(opts["kubeconfig"], opts["timeout"])
        if opts["raw"] is not None:
            status, body = api.get(opts["raw"])
            if status != 200:
                raise Failure(api_error(status, body))
            sys.stdout.write(body.decode(errors="replace"))
            return 0
        if len(words) < 2 or words[1] not in ("nodes", "node", "no"):
            raise Failure(f"error: the kubectl stand-in gets nodes only, not {' '.join(words[1:]) or '(nothing)'}")
        return get_nodes(api, words[2:], opts)
    except Failure as error:
        sys.stderr.write(f"{error}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
