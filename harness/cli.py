"""The `synack` command line.

The exit-status contract is in `exits` (and in `synack --help`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from synack.model.config import PROFILE_RULES, Profile, Variant
from synack.model.scenarios import DEFAULT_SCENARIOS, SCENARIOS
from synack.properties.catalogue import CATALOGUE

from . import check, conformance, docsite, exits, fuzzcmd, prove, replay
from .targets import target_names

EXIT_OK = exits.EXIT_OK
EXIT_FINDING = exits.EXIT_VERDICT
EXIT_USAGE = exits.EXIT_USAGE

LISTS = ("scenarios", "properties", "profiles", "variants", "targets")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"synack: error: {message} (see 'synack --help')\n")


def _rows(what: str) -> list[tuple[str, str]]:
    if what == "scenarios":
        return [
            (s.name, s.description + ("" if s.name in DEFAULT_SCENARIOS else " [not a default]"))
            for s in SCENARIOS.values()
        ]
    if what == "properties":
        return [(p.name, f"{p.meaning} ({p.kind.value}; {p.source})") for p in CATALOGUE]
    if what == "profiles":
        return [(p.value, p.description) for p in Profile]
    if what == "targets":
        return list(target_names())
    return [(v.value, v.description) for v in Variant]


def cmd_list(args: argparse.Namespace) -> int:
    rows = _rows(args.what)
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    if args.what == "profiles" and args.verbose:
        for profile in Profile:
            for rule in PROFILE_RULES[profile]:
                print(f"  {profile.value} {rule.id}: {rule.behaviour}\n      source: {rule.source}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synack",
        description="Model checker and fuzzer for the TCP connection lifecycle (RFC 9293).",
        epilog=exits.CONTRACT,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    p_list = sub.add_parser("list", help="list scenarios, properties, profiles, variants, targets")
    p_list.add_argument("what", choices=LISTS, help="what to list")
    p_list.add_argument(
        "-v", "--verbose", action="store_true", help="with profiles: each rule and its source"
    )
    p_list.set_defaults(func=cmd_list)
    p_check = sub.add_parser(
        "check",
        help="explore scenarios exhaustively and check every property",
        description="Explore every reachable state of each scenario under loss, duplication and "
        "reordering, check the property catalogue, and explain each violation with a shortest "
        "counterexample.  Exit status: 0 all hold, 1 a property is violated, 2 bad usage, "
        "3 unknown (a limit stopped the exploration first).",
    )
    check.add_arguments(p_check)
    p_check.set_defaults(func=check.cmd_check)
    p_prove = sub.add_parser(
        "prove",
        help="z3 proofs for all 32-bit sequence numbers",
        description="Prove claims about the specification for every 32-bit value with z3; "
        "every refutation is re-checked in the Python model.  So far: sequence arithmetic, "
        "the Table 6 acceptability lemmas and the RFC 5961 blind-RST lemma.  Exit status: "
        "0 all proved, 1 refuted, 2 bad usage, 3 unknown.",
    )
    prove.add_arguments(p_prove)
    p_prove.set_defaults(func=prove.cmd_prove)
    p_fuzz = sub.add_parser(
        "fuzz",
        help="fuzz a TCP implementation with the model as oracle",
        description="Run hypothesis-generated adversarial segment sequences against a target "
        "with the model in lockstep as the oracle; every divergence is shrunk, re-run and saved "
        "in --out as JSON (replayable), pcap and a sequence chart.  Exit status: 0 no finding, "
        "1 findings, 2 bad usage or set-up.",
    )
    fuzzcmd.add_arguments(p_fuzz)
    p_fuzz.set_defaults(func=fuzzcmd.cmd_fuzz)
    p_replay = sub.add_parser(
        "replay",
        help="re-run a saved counterexample through the model",
        description="Replay a counterexample saved by `synack check --out DIR` step by step "
        "through the model (every step must be enabled) and re-decide its property.  Exit "
        "status: 1 the violation is reproduced, 0 it is not, 2 the case is unreadable or does "
        "not fit its system.",
    )
    replay.add_arguments(p_replay)
    p_replay.set_defaults(func=replay.cmd_replay)
    p_docs = sub.add_parser(
        "docs",
        help="generate the state-graph documentation (HTML + Markdown)",
        description="Generate a static site (index.html, no server needed) and the same pages "
        "as Markdown: the endpoint state diagram and transition table per profile, every "
        "default scenario's explored graph, the property catalogue with each property's "
        "status per scenario and profile and every broken variant's counterexample, and the "
        "latest reports.  Results are cached by a fingerprint of synack's source.  Exit "
        "status: 0 written, 2 bad usage or set-up (Graphviz missing, unwritable --out).",
    )
    docsite.add_arguments(p_docs)
    p_docs.set_defaults(func=docsite.cmd_docs)
    p_conf = sub.add_parser(
        "conformance",
        help="directed RFC 9293 checks and a fuzz budget per target, as a matrix",
        description="Run a fixed battery of directed checks derived from RFC 9293 (each names "
        "its section and, where one applies, its Appendix B requirement id) and then a fuzz "
        "campaign against each target, with the rfc9293 model as the oracle; write the matrix "
        "(targets x behaviours: conforms / deviates, each deviation with its replayable "
        "evidence) as Markdown, HTML and JSON.  Exit status: 0 the matrix is written, 1 with "
        "--strict and a deviation, 2 bad usage or a target that cannot be run (the matrix is "
        "still written for the others).",
    )
    conformance.add_arguments(p_conf)
    p_conf.set_defaults(func=conformance.cmd_conformance)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    exits.install_sigterm()
    try:
        result: int = args.func(args)
    except KeyboardInterrupt as exc:
        print("synack: interrupted", file=sys.stderr)
        return exits.status_of(exc)
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # an internal error: one line, the traceback kept
        saved = exits.save_traceback(args.command)
        where = f"; traceback in {saved}" if saved else ""
        first = next(iter(str(exc).splitlines()), "")
        print(
            f"synack {args.command}: internal error: {type(exc).__name__}: {first}{where}",
            file=sys.stderr,
        )
        return exits.EXIT_INTERNAL
    return result


if __name__ == "__main__":
    sys.exit(main())
