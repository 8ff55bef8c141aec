"""Exploration speed and memory: states, transitions, states/s, bytes/state, peak RSS.

Run on demand:   .venv/bin/python benchmarks/bench_explore.py [--quick] [--json FILE]

Explores `handshake`, `lifecycle` and `reconnect` at network capacities 2
and 3 and duplication bounds 0, 1 and 2 (rfc9293 profile, loss and
reordering on), each in a fresh subprocess so that its peak resident
memory is its own.  bytes/state is the growth of resident memory over the
run divided by the states stored (graph, keys and interned components
included).  A configuration that hits --max-states or --budget is reported
as incomplete.  Not a test: nothing asserts on these figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from synack.harness.output import write_json

CHILD = """
import json, resource, sys
from synack.harness.check.explore import Limits, explore, rss_now
from synack.model.network import NetworkConfig
from synack.model.scenarios import get
name, capacity, dup, max_states, budget = sys.argv[1:6]
system = get(name).build(net=NetworkConfig(capacity=int(capacity), dup=int(dup)))
r = explore(system, limits=Limits(int(max_states), float(budget), Limits.default_memory()))
print(json.dumps({
    "scenario": name, "capacity": int(capacity), "dup": int(dup),
    "states": r.states, "transitions": r.transitions, "depth": r.depth,
    "seconds": round(r.seconds, 2), "states_per_second": round(r.states / r.seconds),
    "bytes_per_state": round(r.bytes_per_state), "growth_bytes": r.peak_rss,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "complete": r.complete, "stop_reason": r.stop_reason,
    "violated": sorted(r.violations),
}))
"""


def run_one(
    name: str, capacity: int, dup: int, max_states: int, budget: float
) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(capacity), str(dup), str(max_states), str(budget)],
        capture_output=True,
        text=True,
        check=False,
        timeout=budget + 120,
    )
    if out.returncode != 0:
        return {"scenario": name, "capacity": capacity, "dup": dup, "error": out.stderr[-300:]}
    result: dict[str, object] = json.loads(out.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="handshake only, capacity 2 (CI)")
    parser.add_argument("--max-states", type=int, default=3_000_000)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per configuration")
    parser.add_argument("--json", help="also write the rows as JSON to FILE ('-' = stdout)")
    args = parser.parse_args(argv)
    if args.quick:
        configs = [("handshake", 2, d) for d in (0, 1)] + [("reconnect", 2, 0)]
    else:
        configs = [
            (name, capacity, dup)
            for name in ("handshake", "lifecycle", "reconnect")
            for capacity in (2, 3)
            for dup in (0, 1, 2)
        ]
    header = (
        f"{'scenario':<11}{'cap':>4}{'dup':>4}{'states':>11}{'transitions':>13}{'depth':>6}"
        f"{'seconds':>9}{'states/s':>10}{'B/state':>9}{'peak MiB':>10}  note"
    )
    print(header, flush=True)
    rows = []
    for name, capacity, dup in configs:
        row = run_one(name, capacity, dup, args.max_states, args.budget)
        rows.append(row)
        if "error" in row:
            print(f"{name:<11}{capacity:>4}{dup:>4}  failed: {row['error']}", flush=True)
            continue
        note = "" if row["complete"] else f"incomplete: {row['stop_reason']}"
        print(
            f"{name:<11}{capacity:>4}{dup:>4}{row['states']:>11,}{row['transitions']:>13,}"
            f"{row['depth']:>6}{row['seconds']:>9}{row['states_per_second']:>10,}"
            f"{row['bytes_per_state']:>9,}{int(row['peak_rss_bytes']) / 2**20:>10,.0f}  {note}",  # type: ignore[call-overload]
            flush=True,
        )
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
