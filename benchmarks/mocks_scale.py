"""How the program's evaluation scales with the agent count, under Pulumi mocks.

Evaluates the prod stack (3 tainted servers, private nodes behind a bastion, internal NLB) with 100 and
1000 agents, and beside it two bare programs that register the same number of resources:

- plain:  that many minimal custom resources (one string input each), the floor of Pulumi itself;
- replay: the very resources kube-ha registered (same types, names and inputs, as literals), without
          components, Outputs threaded between resources, dependencies or script rendering. The ratio
          to it is the cost of kube-ha's own logic; the ratio to `plain` adds what the typed
          pulumi-aws and pulumi-command resources cost (one Output per declared property).

Each measurement runs in a fresh interpreter, after every import, so peak memory (the process's
maximum resident set) and time belong to that evaluation alone; the best of --repeat runs is kept.
Nothing here asserts: it prints figures. Mocks do not talk to AWS, so these are the program's figures,
not `pulumi up`'s.

    ./venv/bin/python benchmarks/mocks_scale.py [--agents 100 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, argument: str, dump: str | None) -> dict:
    """Runs one evaluation in this process and returns its figures."""
    sys.path.insert(0, str(ROOT))
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    import pulumi
    import pulumi_aws  # noqa: F401  (imported before timing in every variant alike)
    import pulumi_command  # noqa: F401
    from pulumi.runtime import rpc

    import components.cluster  # noqa: F401
    from tests.aws_mocks import AwsMocks, run_aws_stack

    imports = time.perf_counter() - started
    baseline = _rss_mib()

    if kind == "kube-ha":
        agents = int(argument)
        started = time.perf_counter()
        result = run_aws_stack("prod", {"agents": {"count": agents, "instanceType": "m7i.2xlarge"}})
        seconds = time.perf_counter() - started
        records = result.mocks.records
        if dump:
            Path(dump).write_text(json.dumps([[r.type, r.name, r.inputs] for r in records]))
        count = len(records)
    else:
        mocks = AwsMocks()
        if kind == "plain":
            count = int(argument)

            def register() -> None:
                for index in range(count):
                    pulumi.CustomResource("bench:index:Plain", f"plain-{index}", {"value": str(index)})
        else:
            recorded = json.loads(Path(argument).read_text())
            count = len(recorded)
            output_names = _output_names({typ for typ, _, _ in recorded})

            def literal(value):
                if rpc.is_rpc_secret(value):
                    return pulumi.Output.secret(literal(value["value"]))
                if isinstance(value, dict):
                    return {k: literal(v) for k, v in value.items()}
                if isinstance(value, list):
                    return [literal(v) for v in value]
                return value

            def register() -> None:
                for typ, name, inputs in recorded:
                    if typ.startswith("kube-ha:"):
                        pulumi.ComponentResource(typ, name).register_outputs({})
                    else:
                        props = {key: None for key in output_names.get(typ, ())}
                        props.update(literal(inputs))
                        pulumi.CustomResource(typ, name, props)

        pulumi.runtime.set_mocks(mocks, project="kube-ha", stack="bench", preview=False)

        @pulumi.runtime.test
        def program():
            register()

        started = time.perf_counter()
        program()
        seconds = time.perf_counter() - started
        assert len(mocks.records) == count, (len(mocks.records), count)

    peak = _rss_mib()
    return {"kind": kind, "resources": count, "seconds": seconds, "peak_mib": peak,
            "program_mib": peak - baseline, "imports_seconds": imports}


def _output_names(types: set[str]) -> dict[str, list[str]]:
    """Every property a typed SDK class declares, which its constructor turns into an Output."""
    import importlib

    from pulumi.runtime.rpc import get_resource_module

    names: dict[str, list[str]] = {}
    for typ in types:
        package, module_and_class = typ.split(":", 1)
        module_name = module_and_class.rsplit(":", 1)[0]
        module = get_resource_module(package, module_name, "")
        if module is None:
            continue
        cls = getattr(importlib.import_module(module.mod_info["fqn"]), module.mod_info["classes"][typ])
        names[typ] = [getattr(p.fget, "_pulumi_name") for p in vars(cls).values()
                      if isinstance(p, property) and hasattr(p.fget, "_pulumi_name")]
    return names


def _measure(kind: str, argument: str, repeat: int, dump: str | None = None) -> dict:
    best = None
    for _ in range(repeat):
        command = [sys.executable, __file__, "--child", kind, argument] + (["--dump", dump] if dump else [])
        output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        figures = json.loads(output.strip().splitlines()[-1])
        if best is None or figures["seconds"] < best["seconds"]:
            best = figures
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ARGUMENT"), help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child, args.dump)))
        return

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for agents in args.agents:
            dump = os.path.join(scratch, f"records-{agents}.json")
            kube_ha = _measure("kube-ha", str(agents), args.repeat, dump)
            plain = _measure("plain", str(kube_ha["resources"]), args.repeat)
            replay = _measure("replay", dump, args.repeat)
            rows.append((agents, kube_ha, plain, replay))

    print(f"kube-ha under mocks: prod stack, 3 servers + N agents (best of {args.repeat}, fresh process each;"
          f" imports excluded: {rows[0][1]['imports_seconds']:.2f} s once per process)\n")
    header = (f"{'agents':>6} {'resources':>9} | {'kube-ha s':>9} {'plain s':>8} {'replay s':>9} | "
              f"{'x plain':>7} {'x replay':>8} | {'kube-ha MiB':>11} {'plain MiB':>9} {'replay MiB':>10} | "
              f"{'x plain':>7} {'x replay':>8}")
    print(header)
    print("-" * len(header))
    for agents, k, p, r in rows:
        print(f"{agents:>6} {k['resources']:>9} | {k['seconds']:>9.2f} {p['seconds']:>8.2f} {r['seconds']:>9.2f} | "
              f"{k['seconds'] / p['seconds']:>7.2f} {k['seconds'] / r['seconds']:>8.2f} | "
              f"{k['program_mib']:>11.1f} {p['program_mib']:>9.1f} {r['program_mib']:>10.1f} | "
              f"{k['program_mib'] / max(p['program_mib'], 0.1):>7.2f} {k['program_mib'] / max(r['program_mib'], 0.1):>8.2f}")
    print("\nMiB: growth of the peak resident set during the evaluation (the process peaked at "
          + ", ".join(f"{k['peak_mib']:.0f}" for _, k, _, _ in rows) + " MiB for kube-ha).")
    if len(rows) >= 2:
        (a1, k1, p1, r1), (a2, k2, p2, r2) = rows[0], rows[-1]
        growth = k2["resources"] / k1["resources"]
        print(f"\nGrowth from {a1} to {a2} agents: resources x{growth:.2f}, kube-ha time x{k2['seconds'] / k1['seconds']:.2f}"
              f" (plain x{p2['seconds'] / p1['seconds']:.2f}, replay x{r2['seconds'] / r1['seconds']:.2f}),"
              f" kube-ha memory x{k2['program_mib'] / max(k1['program_mib'], 0.1):.2f}.")
        per_agent = (k2["seconds"] - k1["seconds"]) / (a2 - a1)
        print(f"Marginal cost per agent: {per_agent * 1000:.1f} ms and "
              f"{(k2['program_mib'] - k1['program_mib']) / (a2 - a1) * 1024:.0f} KiB.")


if __name__ == "__main__":
    main()
