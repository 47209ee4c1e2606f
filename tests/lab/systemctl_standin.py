"""The lab's `systemctl`: a stand-in for systemd inside a lab host, where nothing runs systemd as PID 1.

Installed in every lab host as /usr/local/lib/kube-ha-lab/lab_systemctl.py, run by the launcher
/usr/local/bin/systemctl (ahead of any real one on PATH; `#!/usr/bin/python3 -IS`, then `run()` of
this module, so Python compiles it once per host, not on every call). It really starts and stops the lab's daemons, and appends every call, with its arguments and result, to
/var/log/lab-systemctl.log (one JSON object a line) so tests can check what a script asked for.

What it does, per unit:
- Units come from /etc/systemd/system, /usr/local/lib/systemd/system and /lib/systemd/system;
  `haproxy` and `keepalived` are defined here instead (their packaged units need systemd's notify
  socket): HAProxy master-worker in the foreground with a master CLI socket, reloaded by SIGUSR2 after
  a config check; Keepalived in the foreground logging to the console, reloaded by SIGHUP.
- `start` runs ExecStartPre lines, then ExecStart in the background in its own session and process
  group, stdin /dev/null, stdout and stderr appended to /var/log/lab-units/<unit>.log, the environment
  systemd would give (PATH, LANG, Environment=, EnvironmentFile=) plus LAB_UNIT=<unit>, which marks
  every process of the unit the way a cgroup would.
- `Type=notify` units also get LAB_READY_FILE=<path>: the unit is "activating" until the service
  creates that file, then "active". A blocking `start` waits for that (bounded by TimeoutStartSec,
  at most 600 s); `--no-block` returns at once.
- A unit whose main process is gone without a `stop` is "failed"; a zombie or a reused pid never
  counts as alive (the pid's start time is recorded and compared).
- `stop` sends SIGTERM to every process of the unit (process group, descendants, LAB_UNIT marker),
  then SIGKILL after 10 s.
- `enable`/`disable` add or remove /etc/systemd/system/multi-user.target.wants/<unit>.service.
- Services get systemd's default file-descriptor limits (1024 soft, 524288 hard) where the machine
  allows it; where it does not, HAProxy gets `-n` (see haproxy_fd_cap).

What it leaves out: Restart= (systemd would restart a unit with Restart=always, so a unit that
crashes would be "activating (auto-restart)", not "failed"), dependencies between units, timers,
sockets, cgroups and other resource limits, and the journal (the unit log file stands in for it).
"""

import os
import sys
import time

# Scripts call `systemctl is-active` in polling loops, so a query imports nothing beyond the modules
# above (not even json, which pulls in re and enum: a call costs about 12 ms of CPU instead of 30).
# Other modules are imported where a command needs them; state files are `key=value` lines and the
# log's JSON is written by hand.

STATE_DIR = "/run/lab-systemd"
LOG_FILE = "/var/log/lab-systemctl.log"
UNIT_LOG_DIR = "/var/log/lab-units"
UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
WANTS_DIR = "/etc/systemd/system/multi-user.target.wants"
STOP_TIMEOUT = 10.0
MAX_START_WAIT = 600.0
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# systemd's DefaultLimitNOFILE for services (soft:hard); HAProxy raises its soft limit up to the hard one.
SERVICE_NOFILE = (1024, 524288)

BUILTIN_UNITS = {
    "haproxy": {
        "Description": "HAProxy Load Balancer (lab definition)",
        "Type": "simple",
        "ExecStartPre": ["/usr/sbin/haproxy -c -q -f /etc/haproxy/haproxy.cfg"],
        # $LAB_HAPROXY_MAXCONN: see haproxy_fd_cap().
        "ExecStart": "/usr/sbin/haproxy -W -db -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid -S /run/haproxy-master.sock $LAB_HAPROXY_MAXCONN",
        "ExecReload": ["/usr/sbin/haproxy -c -q -f /etc/haproxy/haproxy.cfg", "/bin/kill -USR2 $MAINPID"],
        "binary": "/usr/sbin/haproxy",
        "path": "/lib/systemd/system/haproxy.service",
    },
    "keepalived": {
        "Description": "Keepalive Daemon (LVS and VRRP) (lab definition)",
        "Type": "simple",
        "ExecStart": "/usr/sbin/keepalived --dont-fork --log-console -f /etc/keepalived/keepalived.conf",
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "binary": "/usr/sbin/keepalived",
        "path": "/lib/systemd/system/keepalived.service",
    },
}


class Failure(Exception):
    """A command failed: message for stderr, systemctl's exit code."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------------
# Units


def unit_name(arg):
    return arg[: -len(".service")] if arg.endswith(".service") else arg


def parse_unit_file(path):
    unit = {"path": path, "ExecStartPre": [], "ExecReload": [], "Environment": [], "EnvironmentFile": []}
    section = None
    with open(path) as handle:
        text = handle.read().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if section == "Unit" and key == "Description":
            unit["Description"] = value
        if section != "Service":
            continue
        if key in ("ExecStartPre", "ExecReload", "Environment", "EnvironmentFile"):
            if value == "":
                unit[key] = []
            else:
                unit[key].append(value)
        elif key in ("Type", "ExecStart", "TimeoutStartSec", "TimeoutStopSec"):
            unit[key] = value
    return unit


def find_unit(name):
    builtin = BUILTIN_UNITS.get(name)
    if builtin is not None:
        if not os.path.exists(builtin["binary"]):
            return None
        unit = dict(builtin)
        unit.setdefault("Environment", [])
        unit.setdefault("EnvironmentFile", [])
        unit.setdefault("ExecStartPre", [])
        return unit
    for directory in UNIT_DIRS:
        path = os.path.join(directory, name + ".service")
        if os.path.isfile(path):
            return parse_unit_file(path)
    return None


def require_unit(name, verb):
    unit = find_unit(name)
    if unit is None:
        raise Failure(f"Failed to {verb} {name}.service: Unit {name}.service not found.", 5)
    return unit


def seconds(value, default):
    import re
    if value is None:
        return default
    value = value.strip()
    if value in ("0", "infinity"):
        return MAX_START_WAIT
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m)?", value)
    if not match:
        return default
    number = float(match.group(1))
    factor = {"ms": 0.001, "min": 60, "m": 60}.get(match.group(2) or "s", 1)
    return min(number * factor, MAX_START_WAIT)


def haproxy_fd_cap():
    """HAProxy needs about 2 x maxconn file descriptors and exits if it cannot raise its limit that far.
    systemd gives services a hard limit of 524288; a lab machine whose hard limit is lower and cannot
    be raised (no CAP_SYS_RESOURCE) gets `-n`, which caps maxconn to what its limit allows. The config
    itself is left as rendered; the cap is written to the unit log."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= SERVICE_NOFILE[1]:
        return ""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, SERVICE_NOFILE[1]))
        return ""
    except (ValueError, OSError):
        return f"-n {max(256, (hard - 1000) // 2)}"


def unit_environment(unit, name):
    import shlex
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "LAB_UNIT": name}
    if name == "haproxy":
        env["LAB_HAPROXY_MAXCONN"] = haproxy_fd_cap()
    for spec in unit.get("EnvironmentFile", []):
        optional = spec.startswith("-")
        path = spec.lstrip("-")
        try:
            with open(path) as handle:
                for line in handle:
                    line = line.strip()
                    if line and not line.startswith("#") and "=" in line:
                        key, value = line.split("=", 1)
                        env[key.strip()] = value.strip().strip("\"'")
        except OSError:
            if not optional:
                raise Failure(f"Failed to load environment file {path} for {name}.service")
    for spec in unit.get("Environment", []):
        for assignment in shlex.split(spec):
            if "=" in assignment:
                key, value = assignment.split("=", 1)
                env[key] = value
    return env


def command_argv(line, env):
    """An Exec line as systemd splits it: no shell, $VAR and ${VAR} expanded, prefixes stripped."""
    import re
    import shlex
    ignore_failure = False
    while line and line[0] in "-@+!:":
        ignore_failure = ignore_failure or line[0] == "-"
        line = line[1:]
    argv = []
    for word in shlex.split(line):
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:
            # systemd splits an unbraced $VAR that stands alone into several words.
            argv.extend(env.get(whole.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), word))
    return argv, ignore_failure


# ---------------------------------------------------------------------------------------------------
# State


def state_path(name):
    return os.path.join(STATE_DIR, name + ".state")


def ready_path(name):
    return os.path.join(STATE_DIR, name + ".ready")


STATE_TYPES = {"pid": int, "pgid": int, "started_at": float, "stopped": lambda v: v == "True"}


def load_state(name):
    """The unit's state file: `key=value` lines (pid, pgid, starttime, type, started_at, stopped, result)."""
    try:
        with open(state_path(name)) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    state = {}
    for line in lines:
        key, _, value = line.partition("=")
        if key:
            state[key] = None if value == "" else STATE_TYPES.get(key, str)(value)
    return state


def save_state(name, state):
    os.makedirs(STATE_DIR, exist_ok=True)
    temporary = state_path(name) + ".tmp"
    with open(temporary, "w") as handle:
        handle.write("".join(f"{key}={'' if value is None else value}\n" for key, value in state.items()))
    os.replace(temporary, state_path(name))


def proc_stat(pid):
    """(state letter, start time) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], fields[19]


def alive(pid, starttime=None):
    stat = proc_stat(pid)
    if stat is None or stat[0] in "ZXx":
        return False
    return starttime is None or stat[1] == starttime


def active_state(name):
    state = load_state(name)
    if not state:
        return "inactive"
    if state.get("result") == "failed":
        return "failed"
    pid = state.get("pid")
    if pid and alive(pid, state.get("starttime")):
        if state.get("type") == "notify" and not os.path.exists(ready_path(name)):
            return "activating"
        return "active"
    if not pid or state.get("stopped"):
        return "inactive"
    return "failed"


def unit_processes(name, state):
    """Every live process of the unit: its process group, the main pid's descendants, and every process
    carrying LAB_UNIT=<unit> in its environment (what a cgroup would hold)."""
    marker = f"LAB_UNIT={name}".encode()
    pgid = state.get("pgid") if state else None
    main = state.get("pid") if state else None
    children = {}
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == os.getpid() or pid == 1:
            continue
        try:
            with open(f"/proc/{pid}/stat") as handle:
                data = handle.read()
            fields = data[data.rindex(")") + 2:].split()
            if fields[0] in "ZXx":
                continue
            ppid, group = int(fields[1]), int(fields[2])
            children.setdefault(ppid, []).append(pid)
            if pgid and group == pgid:
                found.add(pid)
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.add(pid)
        except (OSError, ValueError, IndexError):
            continue
    if main and alive(main, state.get("starttime")):
        found.add(main)
        stack = [main]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in found:
                    found.add(child)
                    stack.append(child)
    return found


# ---------------------------------------------------------------------------------------------------
# Operations


def service_limits():
    """Run in the child before exec: the resource limits systemd gives a service."""
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, SERVICE_NOFILE)
    except (ValueError, OSError):
        pass


def run_exec_lines(lines, env, name, log, what):
    import subprocess
    for line in lines:
        argv, ignore_failure = command_argv(line, env)
        if not argv:
            continue
        try:
            code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd="/", timeout=120,
                                  preexec_fn=service_limits).returncode
        except (OSError, subprocess.TimeoutExpired) as err:
            code = 1
            log.write(f"lab systemctl: {what} {argv[0]}: {err}\n".encode())
        if code != 0 and not ignore_failure:
            return False
    return True


def open_unit_log(name):
    os.makedirs(UNIT_LOG_DIR, exist_ok=True)
    return open(os.path.join(UNIT_LOG_DIR, name + ".log"), "ab", buffering=0)


def start(name, block):
    import subprocess
    unit = require_unit(name, "start")
    current = active_state(name)
    if current in ("active", "activating"):
        if block:
            wait_started(name, unit)
        return
    env = unit_environment(unit, name)
    service_type = unit.get("Type", "simple")
    if service_type == "notify":
        env["LAB_READY_FILE"] = ready_path(name)
    os.makedirs(STATE_DIR, exist_ok=True)
    try:
        os.unlink(ready_path(name))
    except FileNotFoundError:
        pass
    with open_unit_log(name) as log:
        log.write(f"-- lab systemctl: starting {name}.service at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        if env.get("LAB_HAPROXY_MAXCONN"):
            log.write(f"-- lab systemctl: this machine's file descriptor hard limit is below systemd's 524288 and cannot "
                      f"be raised; HAProxy runs with {env['LAB_HAPROXY_MAXCONN']}\n".encode())
        if not run_exec_lines(unit.get("ExecStartPre", []), env, name, log, "ExecStartPre"):
            save_state(name, {"result": "failed", "type": service_type, "pid": None})
            raise Failure(job_failed(name, "start", "the control process exited with error code"))
        argv, _ = command_argv(unit.get("ExecStart", ""), env)
        if not argv:
            raise Failure(f"Failed to start {name}.service: Unit {name}.service has no ExecStart.", 1)
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd="/", start_new_session=True,
                preexec_fn=service_limits,
            )
        except OSError as err:
            save_state(name, {"result": "failed", "type": service_type, "pid": None})
            log.write(f"lab systemctl: cannot execute {argv[0]}: {err}\n".encode())
            raise Failure(job_failed(name, "start", "the control process exited with error code"))
    stat = proc_stat(process.pid)
    save_state(
        name,
        {
            "pid": process.pid,
            "pgid": process.pid,
            "starttime": stat[1] if stat else None,
            "type": service_type,
            "started_at": time.time(),
            "stopped": False,
            "result": "running",
        },
    )
    # The child is left to the host's PID 1, which reaps it; a zombie never counts as alive.
    process.returncode = 0
    if block:
        wait_started(name, unit)


def wait_started(name, unit):
    if unit.get("Type", "simple") == "notify":
        deadline = time.monotonic() + seconds(unit.get("TimeoutStartSec"), 90.0)
        while time.monotonic() < deadline:
            state = active_state(name)
            if state == "active":
                return
            if state != "activating":
                raise Failure(job_failed(name, "start", "the control process exited with error code"))
            time.sleep(0.1)
        raise Failure(job_failed(name, "start", "a timeout was exceeded"))
    # simple: systemd reports success once the process runs; catch an immediate exit all the same.
    time.sleep(0.2)
    if active_state(name) != "active":
        raise Failure(job_failed(name, "start", "the control process exited with error code"))


def job_failed(name, verb, why):
    return (
        f"Job for {name}.service failed because {why}.\n"
        f'See "systemctl status {name}.service" and "journalctl -xeu {name}.service" for details.'
    )


def stop(name):
    import signal
    if find_unit(name) is None and load_state(name) is None:
        raise Failure(f"Failed to stop {name}.service: Unit {name}.service not loaded.", 5)
    state = load_state(name)
    if not state:
        return
    processes = unit_processes(name, state)
    for pid in processes:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_TIMEOUT
    while processes and time.monotonic() < deadline:
        time.sleep(0.05)
        processes = {pid for pid in processes if alive(pid)}
    if processes:
        for pid in unit_processes(name, state) | processes:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(alive(pid) for pid in processes):
            time.sleep(0.05)
    state.update({"stopped": True, "result": "stopped", "pid": None})
    save_state(name, state)
    try:
        os.unlink(ready_path(name))
    except FileNotFoundError:
        pass


def reload(name):
    unit = require_unit(name, "reload")
    if not unit.get("ExecReload"):
        raise Failure(f"Failed to reload {name}.service: Job type reload is not applicable for unit {name}.service.", 1)
    state = load_state(name) or {}
    env = unit_environment(unit, name)
    env["MAINPID"] = str(state.get("pid") or "")
    with open_unit_log(name) as log:
        log.write(f"-- lab systemctl: reloading {name}.service at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        if not run_exec_lines(unit["ExecReload"], env, name, log, "ExecReload"):
            raise Failure(job_failed(name, "reload", "the control process exited with error code"))


def is_enabled(name):
    return os.path.lexists(os.path.join(WANTS_DIR, name + ".service"))


def enable(name, quiet):
    unit = require_unit(name, "enable")
    link = os.path.join(WANTS_DIR, name + ".service")
    if os.path.lexists(link):
        return
    os.makedirs(WANTS_DIR, exist_ok=True)
    os.symlink(unit["path"], link)
    if not quiet:
        print(f"Created symlink {link} \u2192 {unit['path']}.", file=sys.stderr)


def disable(name, quiet):
    link = os.path.join(WANTS_DIR, name + ".service")
    if os.path.lexists(link):
        os.unlink(link)
        if not quiet:
            print(f"Removed \"{link}\".", file=sys.stderr)


def status(name):
    unit = find_unit(name)
    if unit is None:
        raise Failure(f"Unit {name}.service could not be found.", 4)
    state = load_state(name) or {}
    current = active_state(name)
    lines = [
        f"\u25cf {name}.service - {unit.get('Description', name)}",
        f"     Loaded: loaded ({unit['path']}; {'enabled' if is_enabled(name) else 'disabled'})",
        f"     Active: {current}",
    ]
    if current in ("active", "activating"):
        lines.append(f"   Main PID: {state.get('pid')}")
    try:
        with open(os.path.join(UNIT_LOG_DIR, name + ".log"), "rb") as handle:
            tail = handle.read().decode(errors="replace").splitlines()[-10:]
        lines += [""] + tail
    except OSError:
        pass
    print("\n".join(lines))
    return 0 if current == "active" else 3


# ---------------------------------------------------------------------------------------------------
# Command line

COMMANDS = {
    "start", "stop", "restart", "try-restart", "reload", "reload-or-restart", "enable", "disable", "is-enabled",
    "is-active", "is-failed", "status", "daemon-reload", "reset-failed",
}
FLAGS = {"--quiet": "quiet", "-q": "quiet", "--no-block": "no_block", "--now": "now", "--no-pager": None,
         "--full": None, "-l": None, "--no-ask-password": None, "--system": None}


def main(argv):
    options = {"quiet": False, "no_block": False, "now": False}
    words = []
    for arg in argv:
        if arg.startswith("-"):
            if arg not in FLAGS:
                raise Failure(f"systemctl (lab stand-in): unsupported option '{arg}'", 1)
            if FLAGS[arg]:
                options[FLAGS[arg]] = True
        else:
            words.append(arg)
    if not words:
        raise Failure("systemctl (lab stand-in): no command given", 1)
    command, names = words[0], [unit_name(w) for w in words[1:]]
    if command not in COMMANDS:
        raise Failure(f"systemctl (lab stand-in): unsupported command '{command}'", 1)
    if command == "daemon-reload":
        return 0
    if not names:
        raise Failure("Too few arguments.", 1)
    quiet, block = options["quiet"], not options["no_block"]

    if command in ("is-active", "is-failed"):
        states = [active_state(n) for n in names]
        if not quiet:
            print("\n".join(states))
        if command == "is-active":
            return 0 if any(s == "active" for s in states) else 3
        return 0 if any(s == "failed" for s in states) else 1
    if command == "is-enabled":
        code = 1
        for name in names:
            if find_unit(name) is None:
                if not quiet:
                    print(f"Failed to get unit file state for {name}.service: No such file or directory", file=sys.stderr)
                continue
            enabled = is_enabled(name)
            if not quiet:
                print("enabled" if enabled else "disabled")
            code = 0 if enabled else code
        return code
    if command == "status":
        return max(status(n) for n in names)

    os.makedirs(STATE_DIR, exist_ok=True)
    import fcntl

    with open(os.path.join(STATE_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waits = []
        for name in names:
            if command == "enable":
                enable(name, quiet)
                if options["now"]:
                    start(name, False)
                    waits.append(name)
            elif command == "disable":
                disable(name, quiet)
                if options["now"]:
                    stop(name)
            elif command == "start":
                start(name, False)
                waits.append(name)
            elif command == "stop":
                stop(name)
            elif command in ("restart", "try-restart"):
                require_unit(name, "restart")
                if command == "try-restart" and active_state(name) not in ("active", "activating"):
                    continue
                stop(name)
                start(name, False)
                waits.append(name)
            elif command == "reload":
                if active_state(name) not in ("active", "activating"):
                    raise Failure(f"{name}.service is not active, cannot reload.", 1)
                reload(name)
            elif command == "reload-or-restart":
                unit = require_unit(name, "reload")
                if active_state(name) == "active" and unit.get("ExecReload"):
                    reload(name)
                else:
                    stop(name)
                    start(name, False)
                    waits.append(name)
            elif command == "reset-failed":
                state = load_state(name)
                if state and state.get("result") == "failed" or active_state(name) == "failed":
                    save_state(name, {"pid": None, "stopped": True, "result": "stopped"})
    # Waiting for a start to complete happens outside the lock, so queries and other units go on.
    if block:
        for name in waits:
            wait_started(name, require_unit(name, "start"))
    return 0


def to_json(value):
    """JSON for the log's str/int/float/list/dict values, without importing json."""
    if isinstance(value, str):
        out = []
        for char in value:
            if char in '"\\':
                out.append("\\" + char)
            elif ord(char) < 0x20:
                out.append(f"\\u{ord(char):04x}")
            else:
                out.append(char)
        return '"' + "".join(out) + '"'
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return "{" + ", ".join(f"{to_json(str(k))}: {to_json(v)}" for k, v in value.items()) + "}"


def log_call(args, code, started, message):
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)) + f".{int(started * 1000) % 1000:03d}",
        "epoch": round(started, 3),
        "duration": round(time.time() - started, 3),
        "args": args,
        "rc": code,
        "ppid": os.getppid(),
    }
    if message:
        entry["error"] = message
    try:
        os.makedirs(os.path.dirname(LOG_FILE), exist_ok=True)
        with open(LOG_FILE, "a") as handle:
            handle.write(to_json(entry) + "\n")
    except OSError:
        pass


def run():
    started = time.time()
    arguments = sys.argv[1:]
    message = None
    try:
        code = main(arguments)
    except Failure as failure:
        message = str(failure)
        print(message, file=sys.stderr)
        code = failure.code
    except Exception as err:  # noqa: BLE001 - any bug must still be logged and reported
        message = f"systemctl (lab stand-in) internal error: {err!r}"
        print(message, file=sys.stderr)
        code = 1
    log_call(arguments, code, started, message)
    sys.exit(code)


if __name__ == "__main__":
    run()
