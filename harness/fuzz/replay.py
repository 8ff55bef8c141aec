"""`synack replay CASE.json`: re-run a saved counterexample or fuzz finding.

The file is data (docs/exit-status.md): it is read with `casefile`, every
field checked before use, and a fuzz finding runs in the target the file
names only if that target is built in; any other runs only when given
with --target.
"""

from __future__ import annotations

import argparse
import sys

from synack.harness.check.counterexample import (
    ReplayError,
    actions_from_json,
    chart,
    reproduces,
    run,
    system_from_json,
)
from synack.harness.common.exits import EXIT_OK, EXIT_USAGE, EXIT_VERDICT
from synack.harness.fuzz import findings, fuzzcmd
from synack.harness.fuzz.casefile import CaseError, check_counterexample, read_case
from synack.properties.catalogue import BY_NAME


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "case", metavar="CASE.json", help="a counterexample (check --out) or a fuzz finding"
    )
    parser.add_argument(
        "--target",
        default=None,
        help="where to replay it: a check counterexample replays in 'model'; a fuzz finding "
        "in its own target if that is built in (model, variant:NAME, linux, lwip, gvisor, "
        "slirp), else only in the target given here",
    )


def _error(message: str) -> int:
    print(f"synack replay: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        case = read_case(args.case)
    except CaseError as exc:
        return _error(str(exc))
    if case.get("kind") == findings.KIND:
        return fuzzcmd.replay_finding(case, args.target, args.case)
    if args.target not in (None, "model"):
        return _error(f"a check counterexample replays only in the model, not {args.target!r}")
    try:
        check_counterexample(case)
        prop = BY_NAME.get(case["property"])
        if prop is None:
            raise ReplayError(f"unknown property {case['property']!r}")
        system = system_from_json(case)
        actions = actions_from_json(case["steps"])
        steps = run(system, actions)
        message = reproduces(system, prop, actions)
    except (CaseError, ReplayError) as exc:
        return _error(f"{args.case}: {exc}")
    print(chart(steps))
    if message:
        print(f"\nreproduced: {prop.name} VIOLATED: {message}")
        return EXIT_VERDICT
    print(f"\nnot reproduced: {prop.name} holds where the replayed path ends")
    return EXIT_OK
