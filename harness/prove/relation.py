"""Claims about the endpoint transition relation, and their concrete twins.

Each `RelationClaim` is a transition property of one endpoint, stated
twice: over the z3 encoding (`z3local`) and over concrete values of the
Python model.  A z3 counterexample is a run of events; `replay` feeds it
to `model.step` from CLOSED and decides the claim again with the twin.
Only a run that violates the claim in the Python model is reported as
`refuted`; anything else is a spurious counterexample of the encoding.

`catalogue` is the property of `properties/catalogue.py` that the
claim is the endpoint's share of; the agreement test compares the
prover's verdicts with the explorer's through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from synack.harness.prove import induction, z3local
from synack.model import (
    SYNCHRONIZED,
    AbortCall,
    Config,
    Deliver,
    Event,
    Output,
    Reply,
    SegmentArrives,
    Signal,
    State,
    Tcb,
    Variant,
    closed,
    step,
)
from synack.model.ghost import App, answers_syn, count_transmissions
from synack.model.seq import seq_ge, seq_sub
from synack.properties.catalogue import Property, transmissions_over_limit
from synack.properties.catalogue import get as catalogue_property

S = State
ConcreteCheck = Callable[[Tcb, Event, Tcb, tuple[Output, ...], App], str | None]

PROOF_CONFIG = Config(syn_retries=2, synack_retries=2, retries=2)
"""The configuration of the relation claims: the explorer's (retry counts 2,
RCV.WND 8, MSS 4), so prover and explorer judge the same endpoint."""


def _error(outputs: tuple[Output, ...]) -> bool:
    return any(isinstance(o, Signal) and o.reply.is_error for o in outputs)


def _ack_before_close(
    b: Tcb, event: Event, a: Tcb, outputs: tuple[Output, ...], app: App
) -> str | None:
    if not (b.fin_sent and not b.fin_acked) or a.state not in (S.CLOSED, S.TIME_WAIT):
        return None
    if a.state is S.TIME_WAIT and a.fin_acked:
        return None
    if isinstance(event, SegmentArrives):
        seg = event.segment
        if seg.rst or (seg.has_ack and seq_ge(seg.ack, b.snd_nxt)):
            return None
    if _error(outputs) or isinstance(event, AbortCall):
        return None
    return f"{b.state} -> {a.state} with the FIN (SEQ={seq_sub(b.snd_nxt, 1)}) unacknowledged"


def _retransmission_bounded(
    b: Tcb, event: Event, a: Tcb, outputs: tuple[Output, ...], app: App
) -> str | None:
    return transmissions_over_limit(app, a.cfg)


def _acked_text_delivered(
    b: Tcb, event: Event, a: Tcb, outputs: tuple[Output, ...], app: App
) -> str | None:
    if not isinstance(event, SegmentArrives):
        return None
    if b.state not in SYNCHRONIZED or a.state not in SYNCHRONIZED:
        return None
    delivered = sum(len(o.data) for o in outputs if isinstance(o, Deliver))
    fin = any(isinstance(o, Signal) and o.reply is Reply.CONNECTION_CLOSING for o in outputs)
    advanced = seq_sub(a.rcv_nxt, b.rcv_nxt)
    queued = len(a.rcv_buf) - len(b.rcv_buf) + delivered + fin
    if advanced != queued:
        return (
            f"{b.state}: RCV.NXT advanced by {advanced} but {queued} octets were queued or "
            "delivered (text acknowledged and lost)"
        )
    return None


def _time_wait_entered(
    b: Tcb, event: Event, a: Tcb, outputs: tuple[Output, ...], app: App
) -> str | None:
    if not isinstance(event, SegmentArrives):
        return None
    if b.state not in (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING) or a.state is not S.CLOSED:
        return None
    if event.segment.rst or _error(outputs):
        return None
    return f"{b.state} -> CLOSED on {event.segment}, skipping TIME-WAIT"


@dataclass(frozen=True)
class RelationClaim:
    name: str
    meaning: str
    source: str
    catalogue: Property  # the catalogue's property this claim is a part of
    broken_by: tuple[Variant, ...]
    concrete: ConcreteCheck

    @property
    def formula(self) -> z3local.TransitionProperty:
        return z3local.LOCAL_PROPERTIES[self.name]


RELATION_CLAIMS: tuple[RelationClaim, ...] = (
    RelationClaim(
        "ack-before-close",
        "an endpoint whose FIN is outstanding reaches TIME-WAIT or CLOSED only once it is "
        "ACKed, or by RST, ABORT or an error",
        "RFC 9293 3.10.7.4 fifth step (FIN-WAIT-1, CLOSING, LAST-ACK)",
        catalogue_property("ack-before-close"),
        (Variant.EARLY_CLOSE,),
        _ack_before_close,
    ),
    RelationClaim(
        "retransmission-bounded",
        "SYN, SYN,ACK and FIN are each sent at most 1 + their retry limit times",
        "RFC 9293 3.8.3 (R2)",
        catalogue_property("retransmission-bounded"),
        (Variant.NO_GIVE_UP,),
        _retransmission_bounded,
    ),
    RelationClaim(
        "acked-text-delivered",
        "a synchronized endpoint advances RCV.NXT only over text it queues for the user or "
        "hands over (plus one for a FIN)",
        "RFC 9293 3.10.7.4 seventh step; 3.6 (half-close)",
        catalogue_property("half-close-delivers"),
        (Variant.NO_HALF_CLOSE,),
        _acked_text_delivered,
    ),
    RelationClaim(
        "time-wait-entered",
        "an endpoint that closed first leaves FIN-WAIT-1, FIN-WAIT-2 or CLOSING for CLOSED "
        "only by RST or an error, never skipping TIME-WAIT",
        "RFC 9293 3.10.7.4 eighth step; 3.6",
        catalogue_property("time-wait-reacks-fin"),
        (Variant.NO_TIME_WAIT,),
        _time_wait_entered,
    ),
)

BY_NAME = {c.name: c for c in RELATION_CLAIMS}


# ---------------------------------------------------------------- replay


@dataclass
class Replayed:
    reproduced: bool
    explanation: str
    lines: list[str]


def replay(
    cfg: Config, claim: RelationClaim, events: list[Event], isns: list[int] | None = None
) -> Replayed:
    """Run `events` through `model.step` from CLOSED; decide `claim` at each step.

    `isns[i]` is what the ISN generator yields at event i (a SYN reaching
    LISTEN takes its ISS from it).
    """
    tcb = closed(cfg)
    app = App()
    lines: list[str] = []
    for n, event in enumerate(events, 1):
        if isns is not None:
            tcb = replace(tcb, iss_pool=(isns[n - 1],))
        before = tcb
        tcb, outputs = step(tcb, event)
        app = count_transmissions(app, tcb, outputs, 1 << 16, answers_syn(before, event))
        shown = ", ".join(shown_output(o) for o in outputs if shown_output(o)) or "-"
        lines.append(f"{n}. {before.state} --{event_label(event)}--> {tcb.state}  [{shown}]")
        why = claim.concrete(before, event, tcb, outputs, app)
        if why is not None:
            return Replayed(True, why, lines)
    return Replayed(False, "the Python model satisfies the claim on this run", lines)


def shown_output(output: Output) -> str:
    if isinstance(output, Signal):
        return f'"{output.reply.value}"'
    segment = getattr(output, "segment", None)
    return "" if segment is None else f"sends {segment}"


def event_label(event: Event) -> str:
    if isinstance(event, SegmentArrives):
        return str(event.segment)
    return type(event).__name__.removesuffix("Call").upper()


# ---------------------------------------------------------------- search


@dataclass
class RelationResult:
    claim: RelationClaim
    verdict: str  # "proved" | "refuted" | "unknown"
    seconds: float
    reason: str = ""
    events: list[Event] | None = None
    isns: list[int] | None = None
    chart: list[str] | None = None

    @property
    def steps(self) -> list[str]:
        return [str(e) for e in self.events or []]


def check_claim(
    claim: RelationClaim,
    cfg: Config,
    budget: float,
    workers: induction.Workers | None = None,
    core: induction.InductionResult | None = None,
    max_depth: int = 8,
) -> RelationResult:
    """Prove by induction, refute with a replayed counterexample, or say why not.

    `core` is the endpoint invariants' result for `cfg` (`prove_core`),
    computed here if not given; the claim's induction stands on it.  When
    induction fails, the counterexample search runs in what is left of
    the budget: a variant that breaks the claim is refuted within a few
    events.
    """
    started = time.monotonic()
    deadline = started + budget
    workers = workers or induction.Workers(processes=0)
    if core is None:
        core = induction.prove_core(cfg, deadline, workers)
    if core.proved:
        attempt = induction.prove_claim(cfg, claim.name, deadline, workers)
        if attempt.proved:
            return RelationResult(claim, "proved", time.monotonic() - started)
        why = attempt.failure
    else:
        why = "endpoint invariants not proved: " + core.failure
    found = induction.bmc_local(cfg, claim.formula, max_depth, deadline)
    elapsed = time.monotonic() - started
    if isinstance(found, induction.Trace):
        replayed = replay(cfg, claim, found.events, found.isns)
        verdict = "refuted" if replayed.reproduced else "unknown"
        explanation = replayed.explanation
        if not replayed.reproduced:
            explanation = "spurious counterexample of the encoding: " + explanation
        return RelationResult(
            claim, verdict, elapsed, explanation, found.events, found.isns, replayed.lines
        )
    searched = found or f"no violation within {max_depth} events"
    return RelationResult(claim, "unknown", elapsed, f"{searched}; induction: {why}")
