"""The `synack` command line.

The exit-status contract is in `exits` (and in `synack --help`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from synack.harness import output
from synack.harness.common import exits, validate
from synack.harness.common.exits import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from synack.harness.fuzz.targets.registry import target_names
from synack.model.config import PROFILE_RULES, Profile, Variant
from synack.model.scenarios import DEFAULT_SCENARIOS, SCENARIOS
from synack.properties.catalogue import CATALOGUE

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


def _status(ok: str, verdict: str | None, incomplete: str | None, usage: str = " or set-up") -> str:
    """A subcommand's exit statuses, in the words of the common contract (exits)."""
    parts = [f"0 {ok}"]
    if verdict:
        parts.append(f"1 {verdict}")
    parts.append(f"2 bad usage{usage}")
    if incomplete:
        parts.append(f"3 {incomplete}")
    parts += ["4 an internal error", "130 / 143 interrupted (SIGINT / SIGTERM)"]
    return f"Exit status: {'; '.join(parts)}.  See synack --help."


COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": (
        "check.check",
        "explore scenarios exhaustively and check every property",
        "Explore every reachable state of each scenario under loss, duplication and "
        "reordering, check the property catalogue, and explain each violation with a shortest "
        "counterexample.  "
        + _status("all hold", "a property is violated", "a limit stopped the exploration first"),
    ),
    "prove": (
        "prove.prove",
        "z3 proofs for all 32-bit sequence numbers",
        "Prove claims about the specification for every 32-bit value with z3; "
        "every refutation is re-checked in the Python model.  So far: sequence arithmetic, "
        "the Table 6 acceptability lemmas and the RFC 5961 blind-RST lemma.  "
        + _status("all proved", "a claim is refuted", "a claim is unknown (--timeout)"),
    ),
    "fuzz": (
        "fuzz.fuzzcmd",
        "fuzz a TCP implementation with the model as oracle",
        "Run hypothesis-generated adversarial segment sequences against a target "
        "with the model in lockstep as the oracle; every divergence is shrunk, re-run and saved "
        "in --out as JSON (replayable), pcap and a sequence chart.  "
        + _status("no finding", "findings", None, ", set-up or a target that breaks down"),
    ),
    "replay": (
        "fuzz.replay",
        "re-run a saved counterexample or fuzz finding",
        "Replay a counterexample saved by `synack check --out DIR` step by step "
        "through the model (every step must be enabled) and re-decide its property, or re-run "
        "a fuzz finding.  The file is data: a finding replays in its own target only if that "
        "is built in (model, variant:NAME, linux, lwip, gvisor, slirp); a python: or agent: "
        "target runs only when named with --target.  "
        + _status(
            "not reproduced",
            "reproduced",
            None,
            " or a case that is unreadable, malformed, beyond synack's bounds or does not fit "
            "its system",
        ),
    ),
    "docs": (
        "site.docsite",
        "generate the state-graph documentation (HTML + Markdown)",
        "Generate a static site (index.html, no server needed) and the same pages "
        "as Markdown: the endpoint state diagram and transition table per profile, every "
        "default scenario's explored graph, the property catalogue with each property's "
        "status per scenario and profile and every broken variant's counterexample, and the "
        "latest reports.  Results are cached by a fingerprint of synack's source.  "
        + _status("written", None, None, " or set-up (Graphviz missing, unwritable --out)"),
    ),
    "conformance": (
        "fuzz.conformance",
        "directed RFC 9293 checks and a fuzz budget per target, as a matrix",
        "Run a fixed battery of directed checks derived from RFC 9293 (each names "
        "its section and, where one applies, its Appendix B requirement id) and then a fuzz "
        "campaign against each target, with the rfc9293 model as the oracle; write the matrix "
        "(targets x behaviours: conforms / deviates, each deviation with its replayable "
        "evidence) as Markdown, HTML and JSON.  "
        + _status(
            "the matrix is written",
            "--strict and a deviation",
            None,
            " or a target that cannot be run (the matrix is still written for the others)",
        ),
    ),
}
"""Each command: the module with its `add_arguments` and `cmd_<command>`, help, description."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `only`, just that command's options (the others' modules,
    and their imports, are not loaded: a usage error is answered at once)."""
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
    for name, (module_name, help_text, description) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=description)
        if only is None or only == name:
            module = importlib.import_module(f"{__package__}.{module_name}")
            module.add_arguments(command)
            command.set_defaults(func=getattr(module, f"cmd_{name}"))
    # The docs write the CLI page from the whole parser; handed down, so that
    # nothing below imports the CLI.
    parser.set_defaults(whole_parser=build_parser)
    return parser


def _named_command(argv: Sequence[str]) -> str:
    """The command `argv` names (its first word that is not an option), else ''."""
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    # Started from a non-interactive shell's background job, SIGINT arrives
    # ignored; Ctrl-C (and a test's SIGINT) must still stop the run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(only=_named_command(words)).parse_args(words)
    problem = validate.number_problem(args) or validate.path_problem(args)
    if problem is not None:
        print(f"synack {args.command}: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    exits.install_sigterm()
    _forked_workers_die_of_sigterm()
    output.begin(args.command)
    plain = sys.stdout
    output.guard_stdout()
    try:
        return after_unwritten(_run(args), output.unwritten())
    finally:
        sys.stdout = plain


_FORK_HOOK: list[bool] = []  # registered once per process


def _forked_workers_die_of_sigterm() -> None:
    """A forked worker (a multiprocessing pool's) gets SIGTERM's default action back.

    A pool's terminate() stops its workers with SIGTERM; with the handler of
    `exits` inherited, each would raise Terminated mid-job and print a traceback.
    """
    if not _FORK_HOOK:
        os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
        _FORK_HOOK.append(True)


def _run(args: argparse.Namespace) -> int:
    """The command's own status, or what an interruption or a failure makes it."""
    try:
        result: int = args.func(args)
    except KeyboardInterrupt as exc:
        print("synack: interrupted", file=sys.stderr)
        return exits.status_of(exc)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except output.StdoutFailed as exc:
        output.write_failed("standard output", exc)
        _silence_stdout()
        return EXIT_USAGE
    except Exception as exc:
        return _internal_error(args.command, exc)
    try:
        sys.stdout.flush()
    except OSError as exc:
        output.write_failed("standard output", exc)
        _silence_stdout()
    return result


def after_unwritten(result: int, unwritten: Sequence[str]) -> int:
    """The exit status when some output could not go where it was asked to.

    A verdict (1) stands: it was printed and the report was kept elsewhere.
    A clean or incomplete run (0, 3) becomes 2: what was asked for is missing.
    """
    if unwritten and result in (EXIT_OK, EXIT_INCOMPLETE):
        return EXIT_USAGE
    return result


def _internal_error(command: str, exc: Exception) -> int:
    saved = exits.save_traceback(command)
    where = f"; traceback in {saved}" if saved else ""
    first = next(iter(str(exc).splitlines()), "")
    print(
        f"synack {command}: internal error: {type(exc).__name__}: {first}{where}",
        file=sys.stderr,
    )
    return exits.EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush cannot fail too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
