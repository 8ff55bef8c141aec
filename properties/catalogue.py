"""The property catalogue: what must hold of every run of the specification.

Each property has a name, one line of meaning, its source (RFC 9293
section or seed claim), its kind, and the variants expected to violate it
together with the scenario that shows it.  State invariants and
transition properties are plain functions that return None when they
hold and a one-line explanation when they do not; graph properties
(deadlock, liveness) decide on the sinks and on the whole graph the
explorer hands them (`Graph`), using `properties.ends`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from synack.model.config import Config, Profile, Variant
from synack.model.ghost import App
from synack.model.segment import Segment
from synack.model.seq import seq_add, seq_ge, seq_sub
from synack.model.system import (
    SIDES,
    AppStep,
    DeliverSegment,
    Side,
    StepInfo,
    System,
    SystemState,
    receiver,
)
from synack.model.types import (
    SYNCHRONIZED,
    AbortCall,
    Deliver,
    Emit,
    Signal,
    State,
)

from .ends import End, blocked_description, end_kind


class Kind(Enum):
    STATE = "state invariant"
    TRANSITION = "transition property"
    GRAPH = "graph property"


@dataclass(frozen=True)
class Expect:
    """A variant expected to violate a property, and where that is shown.

    The specification itself holds the property on the same scenario and
    profile, so the violation is the variant's doing.
    """

    variant: Variant
    scenario: str
    profile: Profile = Profile.RFC9293


@dataclass(frozen=True)
class Deviation:
    """A profile that violates a property on a default scenario because the
    stack it describes does: a finding about that stack, not a model bug."""

    profile: Profile
    scenario: str
    why: str


StateCheck = Callable[[System, SystemState], str | None]
TransitionCheck = Callable[[System, SystemState, StepInfo, SystemState], str | None]


class Graph(Protocol):
    """The explored state graph, as a graph property sees it (harness/check/explore.py)."""

    proper_ends: Sequence[int]  # the sinks that are proper ends (properties/ends.py)

    def nodes(self) -> Iterable[int]: ...

    def depth(self, node: int) -> int: ...

    def reaching(self, targets: Iterable[int]) -> set[int]:
        """Every node from which some node of `targets` is reachable."""


GraphCheck = Callable[[System, Graph], tuple[int, str] | None]
"""A decision on the whole (complete) graph: the violating node and why, or None."""


@dataclass(frozen=True)
class Property:
    name: str
    meaning: str
    source: str
    kind: Kind
    violated_by: tuple[Expect, ...]
    check_state: StateCheck | None = None
    check_transition: TransitionCheck | None = None
    # Graph properties: `check_end` on every sink as it is found (so a violation
    # stands even when a limit stops the run), `check_graph` once the graph is whole.
    check_end: StateCheck | None = None
    check_graph: GraphCheck | None = None
    deviations: tuple[Deviation, ...] = ()


# ------------------------------------------------------------- helpers


def _delivered(info: StepInfo) -> tuple[Side, Segment, int] | None:
    action = info.action
    if not isinstance(action, DeliverSegment):
        return None
    return receiver(action.direction), action.envelope.segment, action.envelope.incarnation


def _emitted(info: StepInfo) -> list[Segment]:
    return [o.segment for o in info.outputs if isinstance(o, Emit)]


# ---------------------------------------------- no-old-syn-connection


def _synchronizes_on_current_syn(
    system: System, before: SystemState, info: StepInfo, after: SystemState
) -> str | None:
    side = info.side
    if side is None:
        return None
    was, now = before.tcb(side).state, after.tcb(side)
    if was in SYNCHRONIZED or now.state not in SYNCHRONIZED:
        return None
    app, peer_app = after.app(side), after.app(side.peer)
    if app.irs_from != peer_app.incarnation and app.accepted_by != app.irs_from:
        return (
            f"{side} became {now.state} on a SYN of {side.peer} incarnation {app.irs_from} "
            f"(IRS {now.irs}), an old duplicate: {side.peer} is now at incarnation "
            f"{peer_app.incarnation}, and incarnation {app.irs_from} never accepted "
            f"{side}'s SYN"
        )
    if not now.passive_open and app.accepted_by == 0:
        return (
            f"{side} became {now.state} (IRS {now.irs}) although {side.peer} never accepted "
            f"its SYN (ISS {now.iss})"
        )
    return None


def _established_sides_agree(system: System, state: SystemState) -> str | None:
    c, s = state.client, state.server
    both = c.state is State.ESTABLISHED and s.state is State.ESTABLISHED
    if both and (c.irs != s.iss or s.irs != c.iss):
        return (
            f"both ESTABLISHED but they disagree: client ISS {c.iss} / IRS {c.irs}, "
            f"server ISS {s.iss} / IRS {s.irs}"
        )
    return None


def _no_old_syn_transition(
    system: System, before: SystemState, info: StepInfo, after: SystemState
) -> str | None:
    return _synchronizes_on_current_syn(system, before, info, after) or (
        _established_sides_agree(system, after)
    )


# ------------------------------------------------------ ack-before-close


def _ack_before_close(
    system: System, before: SystemState, info: StepInfo, after: SystemState
) -> str | None:
    side = info.side
    if side is None:
        return None
    b, a = before.tcb(side), after.tcb(side)
    if not (b.fin_sent and not b.fin_acked) or a.state not in (State.CLOSED, State.TIME_WAIT):
        return None
    if a.state is State.TIME_WAIT and a.fin_acked:
        return None
    arrived = _delivered(info)
    if arrived is not None:
        seg = arrived[1]
        if seg.rst or (seg.has_ack and seq_ge(seg.ack, b.snd_nxt)):
            return None  # reset, or this very segment ACKs the FIN
    if any(isinstance(o, Signal) and o.reply.is_error for o in info.outputs):
        return None  # reset by an in-window SYN, give-up, user timeout
    if isinstance(info.action, AppStep):
        op = system.script(side)[before.app(side).pc]
        if isinstance(op.call, AbortCall):
            return None
    return (
        f"{side} went from {b.state} to {a.state} with its FIN "
        f"(SEQ={seq_sub(b.snd_nxt, 1)}) not acknowledged"
    )


# ----------------------------------------------------- data delivery


def _delivers_all_data(system: System, state: SystemState) -> str | None:
    for side in SIDES:
        got, sent = state.app(side).received, state.app(side.peer).sent
        if not sent.startswith(got):
            return f"{side} read {got!r}, which is not what {side.peer} sent ({sent!r})"
    graceful = all(system.app_done(state, side) and state.app(side).error is None for side in SIDES)
    if graceful:
        for side in SIDES:
            got, sent = state.app(side).received, state.app(side.peer).sent
            if got != sent:
                return (
                    f"both programs finished without error, but {side} read {got!r} of "
                    f"the {sent!r} {side.peer} sent"
                )
    return None


def _half_close_delivers(system: System, state: SystemState) -> str | None:
    for side in SIDES:
        app = state.app(side)
        if app.eof and app.tw_owed:
            sent = state.app(side.peer).sent
            if app.received != sent:
                return (
                    f"{side} closed first and has read EOF, but got {app.received!r} of the "
                    f"{sent!r} {side.peer} sent after ACKing its FIN"
                )
    return None


# ------------------------------------------------- time-wait-reacks-fin


def _time_wait_reacks_fin(
    system: System, before: SystemState, info: StepInfo, after: SystemState
) -> str | None:
    arrived = _delivered(info)
    if arrived is None:
        return None
    side, seg, incarnation = arrived
    app = before.app(side)
    if not (seg.fin and app.tw_owed and app.eof and incarnation == app.irs_from):
        return None
    fin_end = seq_add(seg.seq, seg.seg_len)
    for out in _emitted(info):
        if out.has_ack and not out.rst and seq_ge(out.ack, fin_end):
            return None
    answer = ", ".join(str(s) for s in _emitted(info)) or "nothing"
    return (
        f"{side} ({before.tcb(side).state}) answered {side.peer}'s retransmitted FIN "
        f"{seg} with {answer} instead of ACKing it again"
    )


# ---------------------------------------------- no-stale-segment-accepted


def _no_stale_segment(
    system: System, before: SystemState, info: StepInfo, after: SystemState
) -> str | None:
    arrived = _delivered(info)
    if arrived is None:
        return None
    side, seg, incarnation = arrived
    app = before.app(side)
    b, a = before.tcb(side), after.tcb(side)
    if not app.irs_from or incarnation >= app.irs_from:
        return None
    if b.state not in SYNCHRONIZED and b.state is not State.SYN_RECEIVED:
        return None
    delivered = any(isinstance(o, Deliver) for o in info.outputs)
    if a.rcv_nxt != b.rcv_nxt or a.snd_una != b.snd_una or a.state != b.state or delivered:
        return (
            f"{side} ({b.state}, connected to {side.peer} incarnation {app.irs_from}) accepted "
            f"{seg} from {side.peer}'s earlier incarnation {incarnation}"
        )
    return None


# ------------------------------------------------ retransmission-bounded


def _deadlock(system: System, state: SystemState) -> str | None:
    """A sink that is no proper end (properties/ends.py) is a deadlock."""
    if end_kind(system, state) is not End.NONE:
        return None
    return f"deadlock: {blocked_description(system, state)}"


def _no_state_without_an_end(system: System, graph: Graph) -> tuple[int, str] | None:
    """AG EF end: the shallowest state from which no proper end is reachable, if any."""
    can_end = graph.reaching(graph.proper_ends)
    stuck = [n for n in graph.nodes() if n not in can_end]
    if not stuck:
        return None
    node = min(stuck, key=graph.depth)
    return node, (
        f"{len(stuck):,} reachable states from which no proper end is reachable; "
        "the shortest path to one is shown"
    )


def transmissions_over_limit(app: App, cfg: Config) -> str | None:
    """Which of SYN, SYN,ACK and FIN was sent more than 1 + its retry limit times."""
    for what, count, retries in (
        ("SYN", app.syn_tx, cfg.syn_retries),
        ("SYN,ACK", app.synack_tx, cfg.synack_retries),
        ("FIN", app.fin_tx, cfg.retries),
    ):
        if count > 1 + retries:
            return f"sent its {what} {count} times; at most 1 + {retries} allowed"
    return None


def _retransmission_bounded(system: System, state: SystemState) -> str | None:
    for side in SIDES:
        excess = transmissions_over_limit(state.app(side), state.tcb(side).cfg)
        if excess is not None:
            return f"{side} {excess}"
    return None


# -------------------------------------------------------------- catalogue

CATALOGUE: tuple[Property, ...] = (
    Property(
        "no-old-syn-connection",
        "an endpoint reaches a synchronized state only through a SYN the peer's current "
        "incarnation sent; when both are ESTABLISHED they agree on both ISNs",
        "RFC 9293 3.5 (Figures 8, 11); seeds: why three-way and not two-way",
        Kind.TRANSITION,
        (
            Expect(Variant.TWO_WAY_HANDSHAKE, "reconnect"),
            Expect(Variant.UNCHECKED_SYNACK, "reconnect"),
        ),
        check_transition=_no_old_syn_transition,
    ),
    Property(
        "ack-before-close",
        "an endpoint that sent FIN reaches TIME-WAIT or CLOSED only after that FIN is ACKed "
        "(or by RST / abort / give-up)",
        "RFC 9293 3.6, 3.10.7.4 fifth step (FIN-WAIT-1, CLOSING, LAST-ACK)",
        Kind.TRANSITION,
        (Expect(Variant.EARLY_CLOSE, "lifecycle"),),
        check_transition=_ack_before_close,
    ),
    Property(
        "graceful-close-delivers-all-data",
        "after a close without RST, each side received exactly the bytes the other sent, "
        "in order, once",
        "RFC 9293 3.6; seeds: why four-way close",
        Kind.STATE,
        (Expect(Variant.NO_HALF_CLOSE, "half-close"),),
        check_state=_delivers_all_data,
    ),
    Property(
        "half-close-delivers",
        "data the passive closer sends after ACKing the peer's FIN reaches the active closer",
        "RFC 9293 3.6 (half-close), 3.10.7.4 seventh step (FIN-WAIT-2); seeds: four-way close",
        Kind.STATE,
        (Expect(Variant.NO_HALF_CLOSE, "half-close"),),
        check_state=_half_close_delivers,
    ),
    Property(
        "time-wait-reacks-fin",
        "a retransmitted FIN arriving in TIME-WAIT is ACKed again",
        "RFC 9293 3.10.7.4 (TIME-WAIT); seeds: TIME-WAIT for 2MSL",
        Kind.TRANSITION,
        (Expect(Variant.NO_TIME_WAIT, "lifecycle"),),
        check_transition=_time_wait_reacks_fin,
        deviations=(
            Deviation(
                Profile.LINUX,
                "simultaneous-close",
                "Linux (tcp_rcv_state_process(), CLOSING): a segment that ACKs our FIN "
                "moves to TIME-WAIT and is consumed without an ACK, even when it is the "
                "peer's retransmitted FIN; the peer's next retransmission is ACKed from "
                "TIME-WAIT.  Observed against the 6.18 kernel by synack fuzz.",
            ),
        ),
    ),
    Property(
        "no-stale-segment-accepted",
        "nothing from an earlier incarnation is accepted by a later one",
        "RFC 9293 3.4.1, 3.6 (TIME-WAIT); seeds: TIME-WAIT stops old segments",
        Kind.TRANSITION,
        (Expect(Variant.NO_TIME_WAIT, "reuse", Profile.RFC1337),),
        check_transition=_no_stale_segment,
    ),
    Property(
        "retransmission-bounded",
        "SYN, SYN-ACK and FIN are sent at most 1 + retries times, then the connection fails",
        "RFC 9293 3.8.3 (R2); seeds: tcp_syn_retries / tcp_synack_retries",
        Kind.STATE,
        (Expect(Variant.NO_GIVE_UP, "syn-loss"),),
        check_state=_retransmission_bounded,
    ),
    Property(
        "no-deadlock",
        "every terminal state of the graph is a proper end (programs done, an idle listener, "
        "or a documented half-open connection)",
        "RFC 9293 3.5.1, 3.10",
        Kind.GRAPH,
        (Expect(Variant.EARLY_CLOSE, "simultaneous-close"),),
        check_end=_deadlock,
    ),
    Property(
        "eventually-quiescent",
        "from every reachable state a proper end is reachable (AG EF end)",
        "RFC 9293 3.10 (every connection ends)",
        Kind.GRAPH,
        (Expect(Variant.EARLY_CLOSE, "simultaneous-close"),),
        check_graph=_no_state_without_an_end,
    ),
)

BY_NAME = {p.name: p for p in CATALOGUE}


def get(name: str) -> Property:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown property {name!r} (known: {', '.join(BY_NAME)})") from None


def deviation(name: str, profile: Profile, scenario: str) -> Deviation | None:
    """The documented reason `profile` violates property `name` on `scenario`, if any."""
    for known in BY_NAME[name].deviations:
        if known.profile is profile and known.scenario == scenario:
            return known
    return None
