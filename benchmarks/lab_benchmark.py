#!/usr/bin/env python3
"""Lab benchmark: how close a real apply comes to its critical path, and what agents cost.

Deploys, each on a fresh lab and from nothing, 3 servers + 1 agent and 3 servers + 12 agents (two
LB hosts each), with the RKE2 stand-in's install step taking a fixed time (--install-delay, 2 s by
default), and prints:
- wall: the apply's wall time;
- bound: the critical path the program's dependencies impose, from the commands' own measured
  durations: first server + token read + each serial server join + the final check (nodes Ready,
  kubeconfig). Agents and the load balancers run beside that path, so an engine that runs
  independent commands at once finishes in about `bound`;
- wall / bound (aim: <= 1.10) and wall(12 agents) / wall(1 agent) (aim: <= 1.05);
- the VIP failover: seconds from HAProxy killed (SIGKILL) on the VIP holder to the VIP on the other
  LB host, measured --failovers times on the 12-agent lab (the same measurement as lab scenario 4).

Usage (as root, from the repository root):  venv/bin/python benchmarks/lab_benchmark.py [--json FILE]
It is not a test: it asserts nothing, it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.conftest import lab_skip_reason  # noqa: E402
from tests.lab.engine import ApplyResult  # noqa: E402
from tests.lab.hosts import Topology  # noqa: E402
from tests.lab.stack import LabStack, kill_haproxy_and_time_failover  # noqa: E402

SERIAL_PATH = ["servers-server-1", "servers-token", "servers-server-2", "servers-server-3",
               "cluster-nodes-ready", "cluster-kubeconfig"]


def critical_path(result: ApplyResult) -> dict:
    """The bound: durations of the commands on the serial path, summed; and the longest path through
    the program's whole dependency graph, to show nothing else (the LBs, an agent) was longer."""
    d = {e.name: e.duration for e in result.events}
    bound = sum(d[name] for name in SERIAL_PATH if name in d)
    lbs = max(d[f"lb-{lb}-haproxy"] + d[f"lb-{lb}-keepalived"] for lb in ("lb-1", "lb-2"))
    bootstrap = d["servers-server-1"] + d.get("servers-token", 0.0)
    ready_to_join = max(bootstrap, lbs)
    joins = d["servers-server-2"] + d["servers-server-3"]
    agents = max((v for k, v in d.items() if k.startswith("agents-")), default=0.0)
    installs_done = ready_to_join + max(joins, agents)
    longest = installs_done + d["cluster-nodes-ready"] + d["cluster-kubeconfig"]
    return {"bound": bound, "longest_path": longest, "lb_chain": lbs, "slowest_agent": agents, "durations": d}


def deploy(agents: int, install_delay: float) -> dict:
    stack = LabStack(Topology(lbs=2, servers=3, agents=agents), install_delay=install_delay)
    try:
        result = stack.apply()
        nodes = stack.kubectl_nodes()
        assert sum(1 for s in nodes.values() if s == "Ready") == 3 + agents, nodes
        path = critical_path(result)
        figures = {
            "agents": agents,
            "wall": result.wall,
            "bound": path["bound"],
            "longest_path": path["longest_path"],
            "wall_over_bound": result.wall / path["bound"],
            "lb_chain": path["lb_chain"],
            "slowest_agent": path["slowest_agent"],
            "serial_path": {name: round(path["durations"][name], 3) for name in SERIAL_PATH if name in path["durations"]},
        }
        return {"figures": figures, "stack": stack}
    except BaseException:
        stack.close()
        raise


def failovers(stack: LabStack, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        outcome = kill_haproxy_and_time_failover(stack)
        seconds.append(outcome["seconds"])
        old = stack.host(outcome["holder"])
        old.exec("systemctl start haproxy")
        deadline = time.monotonic() + 30
        # Keepalived's higher priority on lb-1 takes the VIP back once its HAProxy is up again.
        while stack.vip_holders() != ["lb-1"] and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install-delay", type=float, default=2.0, help="seconds the stand-in's install step takes")
    parser.add_argument("--agents", type=int, nargs=2, default=[1, 12], metavar=("FEW", "MANY"))
    parser.add_argument("--failovers", type=int, default=3, help="VIP failover measurements")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    reason = lab_skip_reason()
    if reason:
        print(f"lab benchmark not run: {reason}", file=sys.stderr)
        return 2

    few, many = args.agents
    print(f"kube-ha lab benchmark: 2 LB + 3 servers + {few} / {many} agents, install step {args.install_delay:.1f} s, "
          f"{os.cpu_count()} cores")
    runs = {}
    failover_seconds: list[float] = []
    for agents in (few, many):
        run = deploy(agents, args.install_delay)
        try:
            runs[agents] = run["figures"]
            f = run["figures"]
            print(f"  3 servers + {agents:2d} agents: wall {f['wall']:6.2f} s   bound {f['bound']:6.2f} s   "
                  f"wall/bound {f['wall_over_bound']:.3f}   (longest path {f['longest_path']:.2f} s, "
                  f"LB chain {f['lb_chain']:.2f} s, slowest agent {f['slowest_agent']:.2f} s)")
            print("      serial path: " + ", ".join(f"{k} {v:.2f}" for k, v in f["serial_path"].items()))
            if agents == many and args.failovers:
                failover_seconds = failovers(run["stack"], args.failovers)
        finally:
            run["stack"].close()
    ratio = runs[many]["wall"] / runs[few]["wall"]
    print(f"  wall({many} agents) / wall({few} agent{'s' if few != 1 else ''}) = {ratio:.3f}")
    worst = max(r["wall_over_bound"] for r in runs.values())
    print(f"  aims: wall/bound <= 1.10 ({'met' if worst <= 1.10 else 'MISSED'}: worst {worst:.3f}); "
          f"agent ratio <= 1.05 ({'met' if ratio <= 1.05 else 'MISSED'}: {ratio:.3f})")
    if failover_seconds:
        print("  VIP failover (HAProxy killed on the holder): "
              + ", ".join(f"{s:.2f}" for s in failover_seconds)
              + f" s; median {statistics.median(failover_seconds):.2f} s")
    if args.json:
        args.json.write_text(json.dumps(
            {"runs": runs, "agent_ratio": ratio, "vip_failover_seconds": failover_seconds,
             "install_delay": args.install_delay}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
