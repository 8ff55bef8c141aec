"""Time one `step(tcb, event)` call on the (TCB, event) pairs real explorations produce.

Run on demand:   .venv/bin/python benchmarks/bench_step.py [--quick] [--json FILE]

The pairs come from a breadth-first walk of the named scenarios, so the
mix of events and states is the one the explorer feeds to `step`.  Each
pair is timed in a batch of calls (perf_counter_ns) and the per-call time
is the batch time divided by its size; the table gives the median and the
90th percentile over pairs, overall and per event kind.  Not a test: the
figures go in notes and docs, nothing asserts on them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import deque

from synack.harness.output import write_json
from synack.model.endpoint import step
from synack.model.scenarios import SCENARIOS
from synack.model.system import (
    AppStep,
    DeliverSegment,
    FireTimer,
    System,
    enabled,
    transition,
)
from synack.model.tcb import Tcb
from synack.model.types import Event, SegmentArrives, Timeout


def collect_pairs(system: System, limit: int) -> list[tuple[Tcb, Event]]:
    """(TCB, event) pairs met while exploring `system` breadth-first."""
    pairs: list[tuple[Tcb, Event]] = []
    seen = {system.initial}
    queue = deque([system.initial])
    while queue and len(pairs) < limit:
        state = queue.popleft()
        for action in enabled(system, state):
            if isinstance(action, DeliverSegment):
                side = "server" if action.direction.value == "c2s" else "client"
                tcb = state.server if side == "server" else state.client
                pairs.append((tcb, SegmentArrives(action.envelope.segment)))
            elif isinstance(action, FireTimer):
                pairs.append((state.tcb(action.side), Timeout(action.kind)))
            elif isinstance(action, AppStep):
                op = system.script(action.side)[state.app(action.side).pc]
                if op.call is not None:
                    pairs.append((state.tcb(action.side), op.call))
            nxt, _ = transition(system, state, action)
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return pairs[:limit]


def time_pairs(pairs: list[tuple[Tcb, Event]], batch: int) -> dict[str, list[float]]:
    by_kind: dict[str, list[float]] = {}
    for tcb, event in pairs:
        start = time.perf_counter_ns()
        for _ in range(batch):
            step(tcb, event)
        per_call = (time.perf_counter_ns() - start) / batch / 1000.0
        by_kind.setdefault(type(event).__name__, []).append(per_call)
    return by_kind


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median_us": round(statistics.median(ordered), 2),
        "p90_us": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few pairs, small batches (CI)")
    parser.add_argument("--scenario", action="append", help="scenarios to draw pairs from")
    parser.add_argument("--json", help="also write the figures as JSON to FILE ('-' = stdout)")
    args = parser.parse_args(argv)
    names = args.scenario or ["handshake", "lifecycle", "reconnect"]
    limit, batch = (300, 20) if args.quick else (5000, 200)
    pairs: list[tuple[Tcb, Event]] = []
    for name in names:
        pairs += collect_pairs(SCENARIOS[name].build(), limit)
    by_kind = time_pairs(pairs, batch)
    overall = summarize([t for ts in by_kind.values() for t in ts])
    report = {
        "python": sys.version.split()[0],
        "scenarios": names,
        "overall": overall,
        "by_event": {kind: summarize(ts) for kind, ts in sorted(by_kind.items())},
    }
    print(f"step() per call, {overall['n']} (TCB, event) pairs from {', '.join(names)}")
    print(f"{'event':<16}{'pairs':>8}{'median µs':>12}{'p90 µs':>10}")
    for kind, row in [*report["by_event"].items(), ("all", overall)]:  # type: ignore[union-attr]
        print(f"{kind:<16}{row['n']:>8}{row['median_us']:>12}{row['p90_us']:>10}")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
