"""`synack prove`: z3 proofs for all 32-bit sequence numbers.

Each claim is checked in its own solver: the negation of the claim is
asserted, and `unsat` means proved for every value of the variables.  A
`sat` answer yields concrete values, which are re-evaluated with the
Python model before anything is reported: if the model agrees the claim
fails there, the result is `refuted` with that counterexample; if it does
not, the counterexample is spurious (the encoding and the model differ)
and the result is `unknown`, never a silent pass.  A solver timeout is
`unknown` too, with its reason.

Two kinds of claim: lemmas about sequence arithmetic (the acceptability
test of RFC 9293 3.10.7.4 and the RFC 5961 blind-RST rule), proved for
all 32-bit values; and claims about the endpoint's transition relation
(`relation.py`), proved by induction over the endpoint invariants (a row
of their own: every such claim stands on them), and otherwise searched
for a counterexample that replays in the model; and two-endpoint claims
(`twoends.py`: no-old-syn-connection, sequence agreement) over a network
of every segment ever sent, decided the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, TypeVar

import z3
from rich.console import Console
from rich.table import Table

from synack.harness.common import exits
from synack.harness.common.validate import positive_float
from synack.harness.output import save_latest, write_json
from synack.harness.prove import induction, relation, twoends, z3seq
from synack.harness.prove.z3tcb import UnencodedConfig, check_encoded
from synack.model import Flags, Profile, Segment, SegmentArrives, State, Variant, step
from synack.model import seq as pyseq
from synack.model.config import Config
from synack.model.tcb import Tcb

CORE_ROW = "endpoint-invariants"
"""The report row of the lemma the transition-relation claims stand on."""
PAIR_CORE_ROW = "two-endpoint-invariants"
"""The report row of the lemma the two-endpoint claims stand on."""
MAX_WND = 1 << 30  # the largest window RFC 7323 window scaling allows
MODEL_MAX_WND = 0xFFFF  # the model has no window scaling: RCV.WND fits SEG.WND


class Verdict(Enum):
    PROVED = "proved"
    REFUTED = "refuted"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Claim:
    """A named statement over 32-bit sequence numbers, with its Python twin.

    `formula(v)` builds the z3 claim from the variables `v`; `concrete(v)`
    decides the same claim for concrete integers using the Python model,
    which is how a z3 counterexample is checked before it is reported.
    """

    name: str
    meaning: str
    source: str
    variables: tuple[str, ...]
    formula: Callable[[dict[str, z3.BitVecRef]], z3.BoolRef]
    concrete: Callable[[dict[str, int]], bool]
    profiles: tuple[Profile, ...] = tuple(Profile)


@dataclass
class Result:
    claim: Claim
    verdict: Verdict
    seconds: float
    counterexample: dict[str, int] = field(default_factory=dict)
    reason: str = ""


def check(claim: Claim, timeout_ms: int = 30_000) -> Result:
    """Prove `claim`, refute it with a model-checked counterexample, or say why not."""
    variables = {name: z3.BitVec(name, 32) for name in claim.variables}
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(z3.Not(claim.formula(variables)))
    start = time.monotonic()
    answer = solver.check()
    seconds = time.monotonic() - start
    if answer == z3.unsat:
        return Result(claim, Verdict.PROVED, seconds)
    if answer == z3.unknown:
        return Result(claim, Verdict.UNKNOWN, seconds, reason=solver.reason_unknown())
    model = solver.model()
    values = {
        name: model.eval(var, model_completion=True).as_long() for name, var in variables.items()
    }
    if claim.concrete(values):
        return Result(
            claim,
            Verdict.UNKNOWN,
            seconds,
            values,
            "spurious counterexample: the Python model satisfies the claim at these values",
        )
    return Result(claim, Verdict.REFUTED, seconds, values)


# ------------------------------------------------------------ the claims


def _window_ok(v: dict[str, z3.BitVecRef]) -> z3.BoolRef:
    return z3.And(v["wnd"] != 0, z3.ULE(v["wnd"], MAX_WND))


def _overlap(v: dict[str, z3.BitVecRef]) -> z3.BoolRef:
    """The segment's octets [seq, seq+len) and the window share an octet."""
    end = v["rcv_nxt"] + v["wnd"]
    return z3.Or(
        z3seq.seq_between(v["rcv_nxt"], v["seq"], end),
        z3seq.seq_between(v["seq"], v["rcv_nxt"], v["seq"] + v["len"]),
    )


def _py_overlap(v: dict[str, int]) -> bool:
    end = pyseq.seq_add(v["rcv_nxt"], v["wnd"])
    return pyseq.seq_between(v["rcv_nxt"], v["seq"], end) or pyseq.seq_between(
        v["seq"], v["rcv_nxt"], pyseq.seq_add(v["seq"], v["len"])
    )


def _py_acceptable(v: dict[str, int], shift: int = 0) -> bool:
    return pyseq.acceptable(
        pyseq.seq_add(v["rcv_nxt"], shift), v["wnd"], pyseq.seq_add(v["seq"], shift), v["len"]
    )


def _len_ok(v: dict[str, z3.BitVecRef]) -> z3.BoolRef:
    return z3.And(v["len"] != 0, z3.ULE(v["len"], MAX_WND))


def _py_rst_resets(rfc5961: bool, v: dict[str, int]) -> bool:
    """Run the real model: a bare RST reaching an ESTABLISHED TCB."""
    profile = Profile.LINUX if rfc5961 else Profile.RFC9293
    tcb = Tcb(
        state=State.ESTABLISHED,
        cfg=Config(profile=profile, rcv_wnd=v["wnd"]),
        iss=0,
        snd_una=1,
        snd_nxt=1,
        irs=pyseq.seq_sub(v["rcv_nxt"], 1),
        rcv_nxt=v["rcv_nxt"],
    )
    after, _ = step(tcb, SegmentArrives(Segment(Flags.RST, v["seq"])))
    return after.state is State.CLOSED


def _rst_claim(rfc5961: bool, one_value: bool) -> Callable[[dict[str, z3.BitVecRef]], z3.BoolRef]:
    def formula(v: dict[str, z3.BitVecRef]) -> z3.BoolRef:
        resets = z3seq.rst_resets(rfc5961, v["rcv_nxt"], v["wnd"], v["seq"])
        if one_value:
            target = v["seq"] == v["rcv_nxt"]
        else:
            target = z3seq.seq_between(v["rcv_nxt"], v["seq"], v["rcv_nxt"] + v["wnd"])
        model_window = z3.And(v["wnd"] != 0, z3.ULE(v["wnd"], MODEL_MAX_WND))
        return z3.Implies(model_window, resets == target)

    return formula


def _py_rst_claim(rfc5961: bool, one_value: bool) -> Callable[[dict[str, int]], bool]:
    def concrete(v: dict[str, int]) -> bool:
        if not 0 < v["wnd"] <= MODEL_MAX_WND:
            return True
        resets = _py_rst_resets(rfc5961, v)
        if one_value:
            return resets == (v["seq"] == v["rcv_nxt"])
        end = pyseq.seq_add(v["rcv_nxt"], v["wnd"])
        return resets == pyseq.seq_between(v["rcv_nxt"], v["seq"], end)

    return concrete


SEQ_VARS = ("rcv_nxt", "wnd", "seq", "len")

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "seq-order-total",
        "for any two sequence numbers that are not 2^31 apart, exactly one is before the other",
        "RFC 9293 3.4 (comparisons modulo 2^32)",
        ("a", "b"),
        lambda v: z3.Implies(
            z3.And(v["a"] != v["b"], v["b"] - v["a"] != z3seq.HALF),
            z3seq.seq_lt(v["a"], v["b"]) != z3seq.seq_lt(v["b"], v["a"]),
        ),
        lambda v: (
            v["a"] == v["b"]
            or pyseq.seq_sub(v["b"], v["a"]) == 1 << 31
            or pyseq.seq_lt(v["a"], v["b"]) != pyseq.seq_lt(v["b"], v["a"])
        ),
    ),
    Claim(
        "acceptability-shift-invariant",
        "Table 6 gives the same answer when every sequence number is shifted by any k, "
        "across the wrap from 2^32 - 1 to 0",
        "RFC 9293 3.4, 3.10.7.4 Table 6",
        (*SEQ_VARS, "k"),
        lambda v: (
            z3seq.acceptable(v["rcv_nxt"] + v["k"], v["wnd"], v["seq"] + v["k"], v["len"])
            == z3seq.acceptable(v["rcv_nxt"], v["wnd"], v["seq"], v["len"])
        ),
        lambda v: _py_acceptable(v, v["k"]) == _py_acceptable(v),
    ),
    Claim(
        "acceptability-sound",
        "a segment with text that Table 6 accepts shares at least one octet with the window",
        "RFC 9293 3.10.7.4 Table 6",
        SEQ_VARS,
        lambda v: z3.Implies(
            z3.And(
                _window_ok(v),
                _len_ok(v),
                z3seq.acceptable(v["rcv_nxt"], v["wnd"], v["seq"], v["len"]),
            ),
            _overlap(v),
        ),
        lambda v: (
            not (0 < v["wnd"] <= MAX_WND and 0 < v["len"] <= MAX_WND and _py_acceptable(v))
            or _py_overlap(v)
        ),
    ),
    Claim(
        "acceptability-complete",
        "a segment no longer than the window that shares an octet with it is accepted "
        "(longer ones that straddle the whole window are not: Table 6 tests only the ends)",
        "RFC 9293 3.10.7.4 Table 6",
        SEQ_VARS,
        lambda v: z3.Implies(
            z3.And(_window_ok(v), _len_ok(v), z3.ULE(v["len"], v["wnd"]), _overlap(v)),
            z3seq.acceptable(v["rcv_nxt"], v["wnd"], v["seq"], v["len"]),
        ),
        lambda v: (
            not (0 < v["wnd"] <= MAX_WND and 0 < v["len"] <= v["wnd"] and _py_overlap(v))
            or _py_acceptable(v)
        ),
    ),
    Claim(
        "blind-rst-one-value",
        "with RFC 5961, a blind RST resets a synchronized connection for exactly one "
        "sequence value per window: RCV.NXT (every window up to 65535, every RCV.NXT)",
        "RFC 5961 3.2; RFC 9293 3.10.7.4 second step",
        ("rcv_nxt", "wnd", "seq"),
        _rst_claim(rfc5961=True, one_value=True),
        _py_rst_claim(rfc5961=True, one_value=True),
        (Profile.LINUX,),
    ),
    Claim(
        "blind-rst-whole-window",
        "without RFC 5961, a RST resets a synchronized connection for every sequence value "
        "in the receive window (RCV.WND values; every window up to 65535)",
        "RFC 9293 3.10.7.4 first and second steps",
        ("rcv_nxt", "wnd", "seq"),
        _rst_claim(rfc5961=False, one_value=False),
        _py_rst_claim(rfc5961=False, one_value=False),
        (Profile.RFC9293, Profile.RFC1337),
    ),
)

BY_NAME = {c.name: c for c in CLAIMS}


def claims_for(profile: Profile) -> list[Claim]:
    return [c for c in CLAIMS if profile in c.profiles]


# ------------------------------------------------------------------ command

EXIT_OK, EXIT_USAGE = exits.EXIT_OK, exits.EXIT_USAGE
EXIT_REFUTED, EXIT_UNKNOWN = exits.EXIT_VERDICT, exits.EXIT_INCOMPLETE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--property", action="append", metavar="P", help="claims to check")
    parser.add_argument(
        "--variant", metavar="V", help="check the transition-relation claims on a broken variant"
    )
    parser.add_argument("--profile", default="rfc9293", metavar="P")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=300.0,
        metavar="SECONDS",
        help="time for each row: a lemma, an invariants lemma, or a claim (300)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")


class _Usage(Exception):
    """A bad option: one line, exit 2."""


@dataclass
class _Chosen:
    """What `synack prove` was asked to prove."""

    profile: Profile
    variant: Variant | None
    claims: list[Claim]
    relation_claims: list[relation.RelationClaim]
    pair_claims: list[twoends.PairClaim]


def cmd_prove(args: argparse.Namespace) -> int:
    try:
        chosen = _choose(args)
        cfg = relation.PROOF_CONFIG.with_(profile=chosen.profile, variant=chosen.variant)
        if chosen.relation_claims or chosen.pair_claims:
            try:
                check_encoded(cfg)  # refused, rather than proved about another configuration
            except UnencodedConfig as error:
                raise _Usage(str(error)) from None
    except _Usage as exc:
        print(f"synack prove: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    console = Console(stderr=args.json == "-", highlight=False)
    rows = _prove(chosen, cfg, args.timeout, console)
    _print_rows(console, chosen, rows)
    report = {
        "profile": chosen.profile.value,
        "variant": chosen.variant.value if chosen.variant else None,
        "results": [_row_json(row) for row in rows],
    }
    write_json(args.json, report)
    save_latest("prove", report)
    verdicts = {row.verdict for row in rows}
    if Verdict.REFUTED in verdicts:
        return EXIT_REFUTED
    return EXIT_UNKNOWN if Verdict.UNKNOWN in verdicts else EXIT_OK


def _choose(args: argparse.Namespace) -> _Chosen:
    try:
        profile = Profile(args.profile)
    except ValueError:
        known = ", ".join(p.value for p in Profile)
        raise _Usage(f"unknown profile {args.profile!r} (known: {known})") from None
    variant = None
    if args.variant:
        try:
            variant = Variant(args.variant)
        except ValueError:
            known = ", ".join(v.value for v in Variant)
            raise _Usage(f"unknown variant {args.variant!r} (known: {known})") from None
    # The lemmas are about sequence arithmetic, which no variant changes.
    chosen = _Chosen(
        profile,
        variant,
        [] if variant else claims_for(profile),
        list(relation.RELATION_CLAIMS),
        list(twoends.PAIR_CLAIMS),
    )
    if args.property:
        known_names = [*BY_NAME, *relation.BY_NAME, *twoends.BY_NAME]
        unknown = [name for name in args.property if name not in known_names]
        if unknown:
            raise _Usage(f"unknown claim {unknown[0]!r} (known: {', '.join(known_names)})")
        names = args.property
        chosen.claims = [BY_NAME[n] for n in names if n in BY_NAME and not variant]
        chosen.relation_claims = [relation.BY_NAME[n] for n in names if n in relation.BY_NAME]
        chosen.pair_claims = [twoends.BY_NAME[n] for n in names if n in twoends.BY_NAME]
    if args.timeout <= 0:
        raise _Usage("--timeout must be a positive number of seconds")
    return chosen


def _prove(chosen: _Chosen, cfg: Config, budget: float, console: Console) -> list[Row]:
    results = [check(claim, int(budget * 1000)) for claim in chosen.claims]
    rows: list[Row] = [
        Row(r.claim.name, r.verdict, r.seconds, r.claim.source, r.reason, r.counterexample, [])
        for r in results
    ]
    with induction.Workers() as workers:
        if chosen.relation_claims:
            rows += _claim_rows(
                CORE_ROW,
                lambda now: induction.prove_core(cfg, now + budget, workers),
                chosen.relation_claims,
                lambda c, core: relation.check_claim(c, cfg, budget, workers, core),
                console,
            )
        if chosen.pair_claims:
            rows += _claim_rows(
                PAIR_CORE_ROW,
                lambda now: twoends.prove_pair_core(cfg, now + budget, workers),
                chosen.pair_claims,
                lambda c, core: twoends.check_pair_claim(c, cfg, budget, workers, core),
                console,
            )
    return rows


def _print_rows(console: Console, chosen: _Chosen, rows: list[Row]) -> None:
    variant = chosen.variant
    title = (
        f"synack prove ({chosen.profile.value}{', variant ' + variant.value if variant else ''})"
    )
    table = Table(title=title, title_justify="left")
    for column in ("claim", "result", "seconds", "source"):
        table.add_column(column)
    colour = {Verdict.PROVED: "green", Verdict.REFUTED: "red", Verdict.UNKNOWN: "yellow"}
    for row in rows:
        cell = f"[{colour[row.verdict]}]{row.verdict.value}[/]"
        table.add_row(row.name, cell, f"{row.seconds:.2f}", row.source)
    console.print(table)
    for row in rows:
        if row.verdict is Verdict.PROVED:
            continue
        detail = row.reason or "counterexample, confirmed by the Python model"
        console.print(f"{row.name}: {row.verdict.value}: {detail} {row.counterexample or ''}")
        if row.verdict is Verdict.REFUTED and row.chart:
            console.print("  replayed in the Python model:", markup=False)
            for line in row.chart:
                console.print(f"    {line}", markup=False)


def _row_json(row: Row) -> dict[str, object]:
    return {
        "name": row.name,
        "result": row.verdict.value,
        "seconds": round(row.seconds, 3),
        "source": row.source,
        "counterexample": row.counterexample or None,
        "steps": row.events or None,
        "chart": row.chart or None,
        "reason": row.reason or None,
    }


class _Checked(Protocol):
    verdict: str
    seconds: float
    reason: str
    chart: list[str] | None

    @property
    def steps(self) -> list[str] | None: ...


class _Claim(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def source(self) -> str: ...


C = TypeVar("C", bound=_Claim)


def _claim_rows(
    core_row: str,
    prove_core: Callable[[float], induction.InductionResult],
    claims: Sequence[C],
    check: Callable[[C, induction.InductionResult], _Checked],
    console: Console,
) -> list[Row]:
    """A lemma of invariants (its own row), then each claim that stands on it."""
    with console.status(f"{core_row}: induction"):
        core = prove_core(time.monotonic())
    rows = [_core_row(core_row, core)]
    for claim in claims:
        with console.status(f"{claim.name}: induction, then counterexample search"):
            result = check(claim, core)
        rows.append(
            Row(
                claim.name,
                Verdict(result.verdict),
                result.seconds,
                claim.source,
                result.reason,
                {},
                result.chart or [],
                result.steps or [],
            )
        )
    return rows


def _core_row(name: str, core: induction.InductionResult) -> Row:
    return Row(
        name,
        Verdict.PROVED if core.proved else Verdict.UNKNOWN,
        core.seconds,
        "harness/prove/invariants.py",
        "" if core.proved else ("timeout: " if core.timed_out else "") + core.failure,
        {},
        [],
    )


@dataclass
class Row:
    """One line of the report, from a lemma or a transition-relation claim."""

    name: str
    verdict: Verdict
    seconds: float
    source: str
    reason: str
    counterexample: dict[str, int]
    chart: list[str]
    events: list[str] = field(default_factory=list)
