"""`synack replay CASE.json`: re-run a saved counterexample through the model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synack.properties.catalogue import BY_NAME

from . import findings, fuzzcmd
from .counterexample import ReplayError, actions_from_json, chart, reproduces, run, system_from_json

EXIT_REPRODUCED, EXIT_NOT_REPRODUCED, EXIT_USAGE = 1, 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", metavar="CASE.json", help="a counterexample saved by check --out")
    parser.add_argument(
        "--target",
        default=None,
        help="where to replay it: a check counterexample replays in 'model'; a fuzz finding "
        "in its own target unless another is named (model, variant:NAME, linux)",
    )


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        case = json.loads(Path(args.case).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        print(f"synack replay: error: cannot read {args.case}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(case, dict) and case.get("kind") == findings.KIND:
        return fuzzcmd.replay_finding(case, args.target)
    if args.target not in (None, "model"):
        print(
            f"synack replay: error: a check counterexample replays only in the model, "
            f"not {args.target!r}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        if not isinstance(case, dict) or "steps" not in case or "property" not in case:
            raise ReplayError("not a synack counterexample (needs 'property' and 'steps')")
        prop = BY_NAME.get(case["property"])
        if prop is None:
            raise ReplayError(f"unknown property {case['property']!r}")
        system = system_from_json(case)
        actions = actions_from_json(case["steps"])
        steps = run(system, actions)
        message = reproduces(system, prop, actions)
    except ReplayError as exc:
        print(f"synack replay: error: {args.case}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(chart(steps))
    if message:
        print(f"\nreproduced: {prop.name} VIOLATED: {message}")
        return EXIT_REPRODUCED
    print(f"\nnot reproduced: {prop.name} holds where the replayed path ends")
    return EXIT_NOT_REPRODUCED
