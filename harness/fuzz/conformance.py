"""`synack conformance`: directed RFC 9293 checks and a fuzz budget per target, as a matrix.

Each directed check is a fixed fuzzing example (harness/fuzz/fuzz.py): an
open, then segments whose numbers are chosen relative to the target's
state, application calls and waits.  It runs with the rfc9293 profile's
model in lockstep as the oracle, exactly as a fuzz example does, so a
check *conforms* when the target did what RFC 9293's Section 3.10 says at
every step, and *deviates* when it did not; then the deviating run is the
evidence (saved as a replayable finding: JSON, pcap, chart), and the
linux profile's rules that explain it, if any, are named.  A check whose
actions the target could not be given (a call its sockets API has no
meaning for in that state) is *not exercised*, never counted as a pass.
After the checks each target gets a fuzz campaign of its own
(`--examples`, `--budget`), whose findings are listed with the matrix.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from synack.harness.common import exits
from synack.harness.common.pages import STYLE, Bullets, Heading, Page, Para, Table, html, markdown
from synack.harness.common.validate import nonnegative_float, positive_float, positive_int
from synack.harness.fuzz import findings
from synack.harness.fuzz.fuzz import (
    Action,
    Call,
    Example,
    Inject,
    Pick,
    Run,
    Wait,
    allowed_text,
    allowed_variations,
    run_example,
)
from synack.harness.fuzz.fuzzcmd import oracle_config, save_findings
from synack.harness.fuzz.fuzzing import first_signal_stops, fuzz
from synack.harness.fuzz.targets.base import CallName, Role, Target, TargetError
from synack.harness.fuzz.targets.registry import open_target, parse_target
from synack.harness.output import save_latest
from synack.model.config import RFC_ALLOWED as ALL_RFC_ALLOWED
from synack.model.config import RULE_IDS, Profile
from synack.model.segment import Flags

SYN, ACK, FIN, RST = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST
WRAP_ISS = 0xFFFF_FFF8  # the peer's text crosses 2^32 after 8 octets
PEER_ISS = 0x0BAD_F00D
DEFAULT_TARGETS = ("linux", "lwip", "gvisor", "slirp")
EXIT_OK, EXIT_FINDING, EXIT_USAGE = exits.EXIT_OK, exits.EXIT_VERDICT, exits.EXIT_USAGE


def seg(flags: Flags, seq: str = "exact", ack: str = "exact", size: int = 0, n: int = 0) -> Inject:
    return Inject(int(flags), Pick(seq, n), Pick(ack, n), size)


ESTABLISH_PASSIVE = (seg(SYN), seg(ACK))


@dataclass(frozen=True)
class Check:
    id: str
    title: str  # what RFC 9293 requires, in a line
    section: str  # where RFC 9293 says it
    requirement: str  # the Appendix B id, where one applies
    role: Role
    actions: tuple[Action, ...]
    peer_iss: int = PEER_ISS

    def example(self) -> Example:
        return Example(self.role, self.peer_iss, 0x1000, self.actions)


# ------------------------------------------------------------ window edges
#
# The exact edges of the receive window and of the acknowledgment range, one
# check per segment kind and edge.  A fuzz campaign meets an exact edge only by
# chance (three 600-example campaigns missed a RST at RCV.NXT+RCV.WND on
# gVisor), so each edge gets a directed check.  The numbers are resolved when
# the segment is sent, against the window the target last advertised (the
# oracle learns RCV.WND from it; harness/fuzz/fuzz.py `resolve_seq`): the edge is
# the target's own, whatever window it chose.


@dataclass(frozen=True)
class Edge:
    name: str  # the id's suffix
    pick: Pick
    where: str  # the number, in RFC 9293's variables


SEQ_EDGES = (
    Edge("left-1", Pick("old", 0), "RCV.NXT-1"),
    Edge("right-1", Pick("last", 0), "RCV.NXT+RCV.WND-1"),
    Edge("right", Pick("outside", 0), "RCV.NXT+RCV.WND"),
    Edge("right-plus-1", Pick("outside", 1), "RCV.NXT+RCV.WND+1"),
)
ACK_EDGES = (
    Edge("una-1", Pick("old", 0), "SND.UNA-1"),
    Edge("nxt", Pick("exact"), "SND.NXT"),
    Edge("nxt-plus-1", Pick("future", 0), "SND.NXT+1"),
)
KINDS = {  # name: (flags without ACK, flags with ACK, text octets, in words)
    "rst": (RST, RST | ACK, 0, "a RST"),
    "syn": (SYN, SYN | ACK, 0, "a SYN"),
    "bare": (ACK, ACK, 0, "an ACK without text"),
    "text": (ACK, ACK, 4, "text"),
    "fin": (FIN | ACK, FIN | ACK, 0, "a FIN"),
}
OUTSIDE = "3.10.7.4 (first, second); Table 6"
DROPPED = "is outside the window: dropped silently, the connection stays"
UNACCEPTABLE = (
    "is unacceptable: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, dropped",
    "3.10.7.4 (first); Table 6",
    "",
)
HELD = (
    "begins in the window above RCV.NXT: acknowledged at RCV.NXT, held for later or "
    "dropped (not exercised on a stack that holds it)"
)
SEQ_RULES: dict[tuple[str, str], tuple[str, str, str]] = {
    # (kind, edge): (what RFC 9293 requires, where, Appendix B id); else UNACCEPTABLE
    ("rst", "left-1"): (DROPPED, OUTSIDE, ""),
    ("rst", "right-1"): ("is in the window: reset (3.10.7.4 as written) or a challenge ACK",
                         "3.10.7.4 (second); Table 6; RFC 5961 3", ""),
    ("rst", "right"): (DROPPED, OUTSIDE, ""),
    ("rst", "right-plus-1"): (DROPPED, OUTSIDE, ""),
    ("syn", "right-1"): ("is in the window: RST and reset (3.10.7.4 as written) or a "
                         "challenge ACK", "3.10.7.4 (fourth); Table 6; RFC 5961 4", ""),
    ("bare", "right-1"): ("is acceptable: taken, no reply", "3.10.7.4 (first); Table 6", ""),
    ("text", "left-1"): ("straddles the left edge: the new octets are taken and "
                         "acknowledged, the old one is not delivered again",
                         "3.10.7.4 (first, seventh); Table 6", ""),
    ("text", "right-1"): (HELD, "3.10.7.4 (first, seventh); Table 6", "SHLD-31"),
    ("fin", "right-1"): (HELD, "3.10.7.4 (first, eighth); Table 6", "SHLD-31"),
}  # fmt: skip
RESETS = "at RCV.NXT resets, whatever it acknowledges"
SYN_AT_NXT = (
    "at RCV.NXT is in the window: RST and reset or a challenge ACK, whatever it acknowledges"
)
NOT_SENT = "acknowledges what was not sent: an ACK, the segment dropped"
ACK_RULES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("rst", "una-1"): (RESETS, "3.10.7.4 (second)", ""),
    ("rst", "nxt"): (RESETS, "3.10.7.4 (second)", ""),
    ("rst", "nxt-plus-1"): (RESETS, "3.10.7.4 (second)", ""),
    ("syn", "una-1"): (SYN_AT_NXT, "3.10.7.4 (fourth); RFC 5961 4", ""),
    ("syn", "nxt"): (SYN_AT_NXT, "3.10.7.4 (fourth); RFC 5961 4", ""),
    ("syn", "nxt-plus-1"): (SYN_AT_NXT, "3.10.7.4 (fourth); RFC 5961 4", ""),
    ("bare", "una-1"): ("is a duplicate: ignored, or a challenge ACK",
                        "3.10.7.4 (fifth); RFC 5961 5", "MAY-12"),
    ("bare", "nxt"): ("is taken, no reply", "3.10.7.4 (fifth)", ""),
    ("bare", "nxt-plus-1"): (NOT_SENT, "3.10.7.4 (fifth)", ""),
    ("text", "una-1"): ("has a duplicate ACK, which is ignored, and the text is taken; or "
                        "the segment is discarded with a challenge ACK",
                        "3.10.7.4 (fifth, seventh); RFC 5961 5", "MAY-12"),
    ("text", "nxt"): ("is taken and acknowledged", "3.10.7.4 (fifth, seventh)", ""),
    ("text", "nxt-plus-1"): (NOT_SENT + ", its text not taken", "3.10.7.4 (fifth)", ""),
    ("fin", "una-1"): ("has a duplicate ACK, which is ignored: the FIN is acknowledged -> "
                       "CLOSE-WAIT; or a challenge ACK", "3.10.7.4 (fifth, eighth); RFC 5961 5",
                       "MAY-12"),
    ("fin", "nxt"): ("is acknowledged -> CLOSE-WAIT", "3.10.7.4 (fifth, eighth)", ""),
    ("fin", "nxt-plus-1"): (NOT_SENT + ", ESTABLISHED stays", "3.10.7.4 (fifth)", ""),
}  # fmt: skip


def _probe(kind: str, seq: Pick, ack: Pick, with_ack: bool) -> Inject:
    plain, acked, size, _ = KINDS[kind]
    return Inject(int(acked if with_ack else plain), seq, ack, size)


def _after(kind: str, state: str) -> tuple[Action, ...]:
    """What shows that the connection went on as it should after the probe."""
    if kind == "fin" or state != "ESTABLISHED":
        # A bare ACK: text after the peer's FIN is a reset on Linux (3.10.7.4 seventh),
        # text in FIN-WAIT-2 is half-close's check; a connection reset answers with RST.
        return (seg(ACK),)
    if kind == "text":
        return (seg(ACK, size=4), Call(CallName.RECV))
    return (seg(ACK, size=4),)


def _edge_check(
    check_id: str,
    state: str,
    field_text: str,
    rule: tuple[str, str, str],
    reach: tuple[Action, ...],
    kind: str,
    seq: Pick,
    ack: Pick,
    acking: bool,
) -> Check:
    """One edge probe: `reach` the state, send `kind` at (`seq`, `ack`), then show its effect."""
    title, section, req = rule
    actions = (*reach, _probe(kind, seq, ack, acking), *_after(kind, state))
    title = f"{state}: {KINDS[kind][3]} {field_text} {title}"
    return Check(check_id, title, section, req, Role.PASSIVE, actions)


def edge_checks() -> tuple[Check, ...]:
    """ESTABLISHED: every kind at every sequence edge and every acknowledgment edge;
    CLOSE-WAIT and FIN-WAIT-2: a RST just inside and at the right edge, an ACK at it."""
    exact = Pick("exact")
    checks = [
        _edge_check(
            f"{kind}-seq-{edge.name}",
            "ESTABLISHED",
            f"at SEG.SEQ = {edge.where}",
            SEQ_RULES.get((kind, edge.name), UNACCEPTABLE),
            ESTABLISH_PASSIVE,
            kind,
            edge.pick,
            exact,
            False,
        )
        for kind in KINDS
        for edge in SEQ_EDGES
    ]
    checks += [
        _edge_check(
            f"{kind}-ack-{edge.name}",
            "ESTABLISHED",
            f"with SEG.ACK = {edge.where}",
            ACK_RULES[(kind, edge.name)],
            ESTABLISH_PASSIVE,
            kind,
            exact,
            edge.pick,
            True,
        )
        for kind in KINDS
        for edge in ACK_EDGES
    ]
    states = {
        "close-wait": ("CLOSE-WAIT", (*ESTABLISH_PASSIVE, seg(FIN | ACK))),
        "fin-wait-2": ("FIN-WAIT-2", (*ESTABLISH_PASSIVE, Call(CallName.SHUTDOWN), seg(ACK))),
    }
    checks += [
        _edge_check(
            f"{prefix}-{kind}-seq-{edge.name}",
            state,
            f"at SEG.SEQ = {edge.where}",
            SEQ_RULES.get((kind, edge.name), UNACCEPTABLE),
            reach,
            kind,
            edge.pick,
            exact,
            False,
        )
        for prefix, (state, reach) in states.items()
        for kind, edge in (("rst", SEQ_EDGES[1]), ("rst", SEQ_EDGES[2]), ("bare", SEQ_EDGES[2]))
    ]
    return tuple(checks)


EDGE_CHECKS = edge_checks()


CHECKS: tuple[Check, ...] = (
    Check("handshake-passive", "passive OPEN: SYN -> SYN,ACK; its ACK -> ESTABLISHED, text taken",
          "3.5 Figure 6; 3.10.7.2", "", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, seg(ACK, size=4), Call(CallName.RECV))),
    Check("handshake-active", "active OPEN: SYN; the SYN,ACK is acknowledged -> ESTABLISHED",
          "3.5 Figure 6; 3.10.7.3", "", Role.ACTIVE, (seg(SYN | ACK), seg(ACK, size=4))),
    Check("simultaneous-open", "SYN-SENT: a SYN crossing ours -> SYN,ACK; its ACK -> ESTABLISHED",
          "3.5 Figure 7; 3.10.7.3", "MUST-10", Role.ACTIVE, (seg(SYN), seg(ACK))),
    Check("old-duplicate-syn", "SYN-RECEIVED from LISTEN: a RST returns to LISTEN; a new SYN "
          "is answered", "3.5 Figure 9; 3.10.7.4", "MUST-11", Role.PASSIVE,
          (seg(SYN), seg(RST), seg(SYN, seq="future", n=50), seg(ACK))),
    Check("listen-ack", "LISTEN: an ACK is answered <SEQ=SEG.ACK><CTL=RST>", "3.10.7.2", "",
          Role.PASSIVE, (seg(ACK, ack="random", n=0x1234_5678), *ESTABLISH_PASSIVE)),
    Check("listen-rst", "LISTEN: a RST is ignored", "3.10.7.2", "", Role.PASSIVE,
          (seg(RST), *ESTABLISH_PASSIVE)),
    Check("syn-sent-bad-ack", "SYN-SENT: a SYN,ACK acknowledging what was never sent is "
          "answered <SEQ=SEG.ACK><CTL=RST>, the connection stays", "3.10.7.3", "",
          Role.ACTIVE, (seg(SYN | ACK, ack="future", n=60), seg(SYN | ACK))),
    Check("syn-sent-rst", "SYN-SENT: RST,ACK acknowledging the SYN -> CLOSED (refused); then a "
          "segment is answered with RST", "3.10.7.3; 3.10.7.1", "", Role.ACTIVE,
          (seg(RST | ACK), seg(ACK))),
    Check("rst-exact", "ESTABLISHED: a RST at RCV.NXT -> CLOSED; the next segment gets a RST",
          "3.10.7.4 (second)", "", Role.PASSIVE, (*ESTABLISH_PASSIVE, seg(RST), seg(ACK))),
    Check("rst-in-window", "a RST in the window, not at RCV.NXT: reset (3.10.7.4 as written) or "
          "a challenge ACK (RFC 5961 3, which 3.10.7.4 recommends)", "3.10.7.4 (second)", "",
          Role.PASSIVE, (*ESTABLISH_PASSIVE, seg(RST, seq="window", n=2), seg(ACK, size=4))),
    Check("syn-in-window", "a SYN in the window: RST and reset (3.10.7.4 as written) or a "
          "challenge ACK (RFC 5961 4)", "3.10.7.4 (fourth)", "", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, seg(SYN, seq="window", n=1), seg(ACK, size=4))),
    Check("beyond-window", "ESTABLISHED: text beyond the window is answered "
          "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and dropped", "3.10.7.4 (first); Table 6", "",
          Role.PASSIVE, (*ESTABLISH_PASSIVE, seg(ACK, seq="future", size=4, n=9))),
    Check("old-duplicate-text", "ESTABLISHED: text wholly below RCV.NXT is acknowledged and "
          "not delivered again", "3.10.7.4 (first); Table 6", "", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, seg(ACK, size=4), seg(ACK, seq="old", size=4, n=3),
           Call(CallName.RECV))),
    Check("ack-of-unsent", "ESTABLISHED: an ACK of something not yet sent is answered with an "
          "ACK and dropped", "3.10.7.4 (fifth)", "", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, seg(ACK, ack="future", n=5))),
    Check("text-across-wrap", "text whose sequence numbers wrap past 2^32 is delivered in "
          "order and acknowledged", "3.4; 3.10.7.4 (seventh)", "", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, seg(ACK, size=4), seg(ACK, size=4), seg(ACK, size=4),
           Call(CallName.RECV)), WRAP_ISS),
    Check("send-text", "SEND: the text goes out; its ACK is taken", "3.10.2; 3.10.7.4 (fifth)",
          "", Role.PASSIVE, (*ESTABLISH_PASSIVE, Call(CallName.SEND, 4), seg(ACK))),
    Check("active-close", "CLOSE: FIN; its ACK -> FIN-WAIT-2; the peer's FIN is acknowledged "
          "-> TIME-WAIT, which acknowledges a retransmitted FIN", "3.6 Figure 12; 3.10.7.4",
          "MUST-13", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, Call(CallName.SHUTDOWN), seg(ACK), seg(FIN | ACK),
           seg(FIN | ACK, seq="old", n=0))),
    Check("passive-close", "a FIN is acknowledged and read as end of file; CLOSE then sends "
          "FIN; its ACK -> CLOSED", "3.6 Figure 12; 3.10.4; 3.10.7.4 (eighth)", "",
          Role.PASSIVE,
          (*ESTABLISH_PASSIVE, seg(FIN | ACK), Call(CallName.RECV), Call(CallName.SHUTDOWN),
           seg(ACK))),
    Check("half-close", "after its FIN is acknowledged a half-closed connection still takes "
          "text", "3.6; 3.10.7.4 (seventh)", "MAY-1", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, Call(CallName.SHUTDOWN), seg(ACK), seg(ACK, size=4),
           Call(CallName.RECV))),
    Check("simultaneous-close", "FIN crossing FIN -> CLOSING; the ACK of ours -> TIME-WAIT",
          "3.6 Figure 13; 3.10.7.4", "", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, Call(CallName.SHUTDOWN), seg(FIN | ACK, ack="una"), seg(ACK))),
    Check("abort", "ABORT: <SEQ=SND.NXT><CTL=RST>, and the connection is gone",
          "3.10.5; 3.10.7.1", "", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, Call(CallName.ABORT), seg(ACK))),
    Check("syn-retransmission", "SYN-SENT: the SYN is retransmitted when the retransmission "
          "timer expires", "3.8.1; 3.10.8", "", Role.ACTIVE, (Wait(), seg(SYN | ACK))),
    Check("text-retransmission", "ESTABLISHED: unacknowledged text is retransmitted when the "
          "retransmission timer expires", "3.8.1; 3.10.8", "", Role.PASSIVE,
          (*ESTABLISH_PASSIVE, Call(CallName.SEND, 4), Wait(), seg(ACK))),
    *EDGE_CHECKS,
)  # fmt: skip


LINUX_RFC_ALLOWED = {
    i: label for i, label in ALL_RFC_ALLOWED.items() if i in RULE_IDS[Profile.LINUX]
}
"""The linux rules whose behaviour RFC 9293 permits too, with their labels: a view of
model/config.py's `RFC_ALLOWED`, the one table (the rules the oracle switches on in
lockstep, `ALLOWED_RULES`).  A target they explain shows an RFC-allowed variation, not a
deviation; the verdict counts every `RFC_ALLOWED` id, the oracle's latitude too
(`allowed_variations`, as in `synack fuzz`)."""


# ------------------------------------------------------------------ running


@dataclass
class Result:
    verdict: str  # conforms | allowed | deviates | flaky | crashed | not exercised | not run
    detail: str = ""
    explanation: str | None = None
    evidence: str | None = None  # the saved finding's chart, relative to --out


@dataclass
class FuzzResult:
    profile: str
    examples: int = 0
    seconds: float = 0.0
    findings: list[dict[str, Any]] = field(default_factory=list)
    failure: str = ""


@dataclass
class Column:
    spec: str
    name: str = ""
    error: str = ""
    traits: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Result] = field(default_factory=dict)
    fuzz: FuzzResult | None = None
    seconds: float = 0.0


def _slug(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in spec)[:40]


def _executed(run: Run) -> int:
    """Actions the target was given (the open and the final quiet step are not)."""
    return len(run.steps) - 2


def judge(target: Target, spec: str, check: Check, out: Path) -> Result:
    """Run one check (twice if it deviates, to tell a deviation from a flaky run)."""
    cfg = oracle_config(target, Profile.RFC9293)
    run = run_example(target, check.example(), cfg)
    if run.divergence is None:
        if _executed(run) < len(check.actions):
            return Result("not exercised", f"{len(check.actions) - _executed(run)} action(s) "
                          "could not be given to this target in its state")  # fmt: skip
        variations = allowed_variations(run)
        if variations:
            where = next(r.action for r in run.steps if r.allowed)
            stem = f"{_slug(spec)}-{check.id}"
            text = allowed_text(variations)
            findings.save_trace(out / "evidence", stem, run, target.traits.exact_windows,
                                f"at {where}: {text}")  # fmt: skip
            return Result("allowed", f"at {where}: {', '.join(variations)}", text,
                          f"evidence/{stem}.txt")  # fmt: skip
        return Result("conforms")
    again = run_example(target, check.example(), cfg)
    same = again.divergence is not None and again.signature() == run.signature()
    rules = findings.linux_rules(run, oracle_config(target, Profile.LINUX), target.traits)
    explanation = findings.explain(run.steps[-1], run, rules)
    stem = f"{_slug(spec)}-{check.id}"
    findings.save(out / "evidence", stem, run, spec, Profile.RFC9293, explanation,
                  flaky=not same, windows=target.traits.exact_windows)  # fmt: skip
    assert run.divergence is not None
    # What the RFC-allowed alternatives explain was no divergence (the oracle tried them):
    # a divergence is a deviation, whichever linux rules describe it.
    return Result(
        "deviates" if same else "flaky",
        f"at {run.steps[-1].action}: {run.divergence.summary()}",
        explanation,
        f"evidence/{stem}.txt",
    )


CRASH_LIMIT = 3
"""Checks a target may break down in before its column gives up (each costs a restart,
and a hanging agent a reply timeout)."""


def run_column(
    spec: str,
    out: Path,
    examples: int,
    budget: float,
    seed: int,
    shrink_time: float,
    progress: Callable[[str], None],
    into: list[Column] | None = None,
) -> Column:
    """Every check, then the fuzz budget, on one target (appended to `into` at once,
    so that what was done survives an abort).

    A target that breaks down during a check (an agent that crashes, say)
    is a result of that check ("crashed", with what it said); the target is
    started afresh for the next one, up to `CRASH_LIMIT` times, and then the
    column ends with an error (the checks left are "not run").  One that
    cannot be started ends its column.  A stop asked by Ctrl-C or SIGTERM
    (`exits.stop_requested`) ends the column after the current check or the
    fuzz campaign; what was done is kept.
    """
    column = Column(spec, results={check.id: Result("not run") for check in CHECKS})
    if into is not None:
        into.append(column)
    started = time.monotonic()
    try:
        target = open_target(spec, Profile.RFC9293)
    except TargetError as exc:
        column.error = str(exc)
        return column
    column.name = target.name
    column.traits = {k: v for k, v in asdict(target.traits).items() if k != "varies"}
    crashes = 0
    try:
        for check in CHECKS:
            if exits.stop_requested():
                return column
            progress(f"{spec}: {check.id}")
            try:
                column.results[check.id] = judge(target, spec, check, out)
            except TargetError as exc:
                column.results[check.id] = Result("crashed", str(exc))
                crashes += 1
                target.close()
                if crashes >= CRASH_LIMIT:
                    column.error = f"broke down in {crashes} checks, the last time: {exc}"
                    return column
                target = open_target(spec, Profile.RFC9293)
        if examples and not exits.stop_requested():
            progress(f"{spec}: fuzzing ({examples} examples, at most {budget:g} s)")
            campaign = fuzz(target, oracle_config(target, Profile.RFC9293), examples, budget,
                            seed, None, key=f"conformance/{spec}",
                            shrink_time=shrink_time)  # fmt: skip
            result = FuzzResult(Profile.RFC9293.value, campaign.examples, campaign.seconds)
            column.fuzz = result  # kept even if the saving below is cut short
            result.failure = campaign.failure
            result.findings = save_findings(
                target, spec, Profile.RFC9293, campaign, out / "fuzz" / _slug(spec)
            )
            result.failure = campaign.failure  # a breakdown while re-running a finding
            if campaign.stopped == "interrupted":
                result.failure = result.failure or "interrupted"
    except TargetError as exc:
        column.error = str(exc)
    finally:
        target.close()
        column.seconds = time.monotonic() - started
    return column


# ------------------------------------------------------------------ reports

MARK = {
    "conforms": "conforms",
    "allowed": "RFC-allowed variation",
    "deviates": "DEVIATES",
    "flaky": "deviates (flaky)",
    "crashed": "CRASHED",
}


def to_json(columns: list[Column], seconds: float) -> dict[str, Any]:
    return {
        "kind": "synack-conformance",
        "version": 1,
        "seconds": round(seconds, 1),
        "checks": [
            {"id": c.id, "title": c.title, "section": c.section, "requirement": c.requirement}
            for c in CHECKS
        ],
        "targets": [
            {
                "target": col.spec,
                "name": col.name,
                "error": col.error or None,
                "traits": col.traits,
                "seconds": round(col.seconds, 1),
                "results": {
                    k: {
                        "verdict": r.verdict,
                        "detail": r.detail or None,
                        "explanation": r.explanation,
                        "evidence": r.evidence,
                    }
                    for k, r in col.results.items()
                },
                "fuzz": None
                if col.fuzz is None
                else {
                    "profile": col.fuzz.profile,
                    "examples": col.fuzz.examples,
                    "seconds": round(col.fuzz.seconds, 1),
                    "failure": col.fuzz.failure or None,
                    "findings": col.fuzz.findings,
                },
            }
            for col in columns
        ],
    }


def _cell(result: Result) -> str:
    text = MARK.get(result.verdict, result.verdict)
    return f"[{text}]({result.evidence})" if result.evidence else text


def page(columns: list[Column], seconds: float, command: str) -> Page:
    doc = Page("conformance", "synack conformance: RFC 9293 matrix")
    doc.add(Para(
        f"`{command}`, {seconds:.0f} s.  Each check is a fixed example run against the target "
        "with the rfc9293 model in lockstep: *conforms* means every step was one RFC 9293 "
        "allows; *RFC-allowed variation* means the target took an alternative RFC 9293 "
        "permits (the profile rule that describes it is named); a deviation links to its "
        "evidence (a replayable finding: its chart; the JSON and pcap beside it).  "
        "*not exercised*: the target's sockets API could not be given the check's calls in "
        "that state."
    ))  # fmt: skip
    headers = ("check", "RFC 9293", *(col.spec for col in columns))
    rows = [
        (f"**{c.id}**: {c.title}", c.section + (f" ({c.requirement})" if c.requirement else ""),
         *(_cell(col.results[c.id]) for col in columns))
        for c in CHECKS
    ]  # fmt: skip
    fuzz_row = ["**fuzz** (rfc9293 oracle)", "3.10"]
    for col in columns:
        if col.fuzz is None:
            fuzz_row.append("not run")
        else:
            n = len(col.fuzz.findings)
            fuzz_row.append(f"{col.fuzz.examples} examples, {col.fuzz.seconds:.0f} s: "
                            + (f"{n} finding(s)" if n else "no finding"))  # fmt: skip
    doc.add(Table(headers, (*rows, tuple(fuzz_row))))
    doc.add(Heading("Targets"))
    doc.add(Bullets(tuple(
        f"**{col.spec}** ({col.name or 'not started'}, {col.seconds:.0f} s)"
        + (f": error: {col.error}" if col.error else "")
        for col in columns
    )))  # fmt: skip
    for col in columns:
        notes = [
            f"**{cid}** ({MARK.get(r.verdict, r.verdict)}) {r.detail}"
            + (f". {r.explanation}" if r.explanation else "")
            for cid, r in col.results.items()
            if r.verdict not in ("conforms", "not run")
        ]
        if col.fuzz is not None:
            notes += [
                f"fuzz finding [{Path(f['files'][2]).name}](fuzz/{_slug(col.spec)}/"
                f"{Path(f['files'][2]).name}): {f['divergence']['summary']}"
                + (f". {f['explanation']}" if f.get("explanation") else "")
                for f in col.fuzz.findings
            ]
        if notes:
            doc.add(Heading(f"{col.spec}: deviations", 3), Bullets(tuple(notes)))
    return doc


def write(
    out: Path, columns: list[Column], seconds: float, command: str, interrupted: str = ""
) -> dict[str, Any]:
    """The matrix as JSON, Markdown and HTML; `interrupted` (e.g. "SIGINT") marks it
    partial: what was not reached is "not run"."""
    out.mkdir(parents=True, exist_ok=True)
    data = to_json(columns, seconds)
    data["interrupted"] = interrupted or None
    (out / "conformance.json").write_text(json.dumps(data, indent=2) + "\n")
    doc = page(columns, seconds, command)
    if interrupted:
        note = Para(
            f"**Interrupted** ({interrupted}): this matrix is partial.  What the run did "
            "not reach is *not run*; a target not reached has no column."
        )
        doc.blocks.insert(0, note)
    (out / "conformance.md").write_text(markdown(doc))
    (out / "conformance.html").write_text(html(doc, site=False))
    (out / "style.css").write_text(STYLE.lstrip())
    return data


# ---------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated targets (default {','.join(DEFAULT_TARGETS)}; any --target of "
        "synack fuzz)",
    )
    parser.add_argument("--out", default="synack-conformance", help="where the matrix goes")
    parser.add_argument(
        "--examples", type=positive_int, default=300, help="fuzz examples per target"
    )
    parser.add_argument(
        "--budget", type=positive_float, default=90.0, help="fuzz seconds per target"
    )
    parser.add_argument("--seed", type=int, default=1, help="fuzz seed (default 1)")
    parser.add_argument(
        "--shrink-time",
        type=nonnegative_float,
        default=10.0,
        help="seconds spent shrinking each fuzz finding (10; 0: none)",
    )
    parser.add_argument("--no-fuzz", action="store_true", help="the directed checks only")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when any target deviates on any check"
    )


def cmd_conformance(args: argparse.Namespace) -> int:
    specs = [s.strip() for s in args.targets.split(",") if s.strip()]
    if not specs:
        return _usage("--targets names no target")
    try:
        specs = [parse_target(s, Profile.RFC9293) for s in specs]
    except ValueError as exc:
        return _usage(str(exc))
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _usage(f"cannot write --out {out}: {exc.strerror}")
    console = Console(stderr=True)
    started = time.monotonic()
    columns: list[Column] = []
    examples = 0 if args.no_fuzz else args.examples
    aborted = False
    # The first Ctrl-C or SIGTERM stops every target (the current check or fuzz
    # campaign ends first); a second one cuts that short.  Either way the partial
    # matrix is written, marked interrupted, and the exit status is 130 or 143.
    with first_signal_stops(), console.status("conformance") as status:
        try:
            for spec in specs:
                if exits.stop_requested():
                    break
                run_column(spec, out, examples, args.budget, args.seed, args.shrink_time,
                           status.update, into=columns)  # fmt: skip
        except KeyboardInterrupt:  # the second signal (run_column closed its target)
            aborted = True
    interrupted = ""
    if exits.stop_requested() or aborted:
        interrupted = "SIGTERM" if exits.interrupted_status() == exits.EXIT_SIGTERM else "SIGINT"
    command = (
        "synack conformance --targets "
        + ",".join(specs)
        + (
            " --no-fuzz"
            if args.no_fuzz
            else f" --examples {args.examples} --budget {args.budget:g}"
        )
    )
    data = write(out, columns, time.monotonic() - started, command, interrupted)
    save_latest("conformance", data)
    _summary(columns)
    print(f"matrix: {out / 'conformance.md'}, {out / 'conformance.html'}, "
          f"{out / 'conformance.json'}")  # fmt: skip
    # A target that broke down is never a pass: one line each, exit 2.
    broken = False
    for col in columns:
        crashed = [cid for cid, r in col.results.items() if r.verdict == "crashed"]
        fuzz_failed = col.fuzz is not None and col.fuzz.failure not in ("", "interrupted")
        why = col.error or (
            f"broke down in {len(crashed)} check(s) ({', '.join(crashed[:3])}): "
            f"{col.results[crashed[-1]].detail}"
            if crashed
            else f"fuzz: {col.fuzz.failure}"
            if fuzz_failed and col.fuzz is not None
            else ""
        )
        if why:
            broken = True
            print(f"synack conformance: error: {col.spec}: {why}", file=sys.stderr)
    if interrupted:
        print(f"synack conformance: interrupted ({interrupted}); the matrix is partial",
              file=sys.stderr)  # fmt: skip
        return exits.interrupted_status()
    if broken:
        return EXIT_USAGE
    bad = ("deviates", "flaky", "crashed")
    deviates = any(r.verdict in bad for c in columns for r in c.results.values())
    return EXIT_FINDING if args.strict and deviates else EXIT_OK


def _usage(message: str) -> int:
    print(f"synack conformance: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _summary(columns: list[Column]) -> None:
    table = RichTable(title="synack conformance (rfc9293 oracle)", title_justify="left")
    table.add_column("check")
    for col in columns:
        table.add_column(col.spec)
    for check in CHECKS:
        cells = []
        for col in columns:
            verdict = col.results[check.id].verdict
            style = {"conforms": "green", "allowed": "cyan", "deviates": "red",
                     "flaky": "yellow", "crashed": "red"}.get(verdict, "")  # fmt: skip
            cells.append(f"[{style}]{verdict}[/]" if style else verdict)
        table.add_row(check.id, *cells)
    fuzz_cells = [
        "not run" if col.fuzz is None
        else f"{col.fuzz.examples} ex, {len(col.fuzz.findings)} finding(s)"
        for col in columns
    ]  # fmt: skip
    table.add_row("fuzz", *fuzz_cells)
    Console().print(table)
