"""Time the symbolic tracer and the fidelity theorem (harness/prove/fidelity.py).

Run on demand:   .venv/bin/python benchmarks/bench_trace.py [--quick] [--heavy] [--json FILE]

For each configuration of the fidelity grid (every profile and variant at
RCV.WND 8 and 70000, MSS 4 and 1460), every case (state x event kind) is
traced and proved; the table gives per configuration the paths, the
seconds spent tracing (exploring the model's paths, with the z3 checks
that prune them) and in total (tracing and the theorem's obligations).
Without `--heavy` the cases of `tests/test_fidelity.py`'s default run are
timed; `--quick` times rfc9293 at RCV.WND 8, MSS 4 on the light cases only
(a few seconds).  Not a test: the figures go in notes and docs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from synack.harness.output import write_json
from synack.harness.prove.fidelity import Case, CaseResult, cases, cfg_name, prove_case
from synack.model import CloseCall, Config, Profile, SegmentArrives, SendCall, State, Variant

BASE = Config(syn_retries=2, synack_retries=2, retries=2)
HEAVY = {
    SegmentArrives: frozenset(State) - {State.CLOSED, State.LISTEN},
    SendCall: frozenset({State.ESTABLISHED, State.CLOSE_WAIT}),
    CloseCall: frozenset({State.ESTABLISHED, State.CLOSE_WAIT}),
}
"""As tests/test_fidelity.py: the cases its default run leaves to `-m slow`."""


def grid(quick: bool) -> list[Config]:
    if quick:
        return [BASE]
    configs = [BASE.with_(profile=p) for p in Profile] + [BASE.with_(variant=v) for v in Variant]
    return [c.with_(rcv_wnd=w, mss=m) for c in configs for w in (8, 70000) for m in (4, 1460)]


def chosen(heavy: bool) -> list[Case]:
    light = [c for c in cases() if c.state not in HEAVY.get(c.event.kind, frozenset())]
    return [c for c in cases() if c not in light] if heavy else light


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="rfc9293 at 8/4, light cases")
    parser.add_argument("--heavy", action="store_true", help="the cases left to -m slow")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args(argv)
    which = chosen(args.heavy)
    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    print(f"{'configuration':42} {'cases':>5} {'paths':>6} {'trace s':>8} {'total s':>8}")
    for cfg in grid(args.quick):
        results: list[CaseResult] = [prove_case(cfg, case) for case in which]
        row = {
            "config": cfg_name(cfg),
            "cases": len(results),
            "paths": sum(r.paths for r in results),
            "trace_seconds": round(sum(r.trace_seconds for r in results), 3),
            "seconds": round(sum(r.seconds for r in results), 3),
            "slowest": max(results, key=lambda r: r.seconds).case.name,
            "problems": sum(len(r.problems) for r in results),
            "untraced": sum(bool(r.untraced) for r in results),
        }
        rows.append(row)
        print(
            f"{row['config']:42} {row['cases']:5} {row['paths']:6} "
            f"{row['trace_seconds']:8.2f} {row['seconds']:8.2f}   slowest: {row['slowest']}",
            flush=True,
        )
    total = time.perf_counter() - started
    print(f"total {total:.1f} s over {len(rows)} configurations; load {os.getloadavg()[0]:.2f}")
    if args.json:
        write_json(args.json, {"rows": rows, "total_seconds": round(total, 3)})
    return 1 if any(r["problems"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
