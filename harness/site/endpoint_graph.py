"""One endpoint's state machine, explored from the specification itself.

The documentation's state diagram and transition table are not drawn by
hand: `explore_endpoint(cfg)` runs `model.step` breadth-first from a
CLOSED TCB over an event alphabet (every user call, every armed timer,
and the segments a peer can send: its SYN, SYN,ACK, ACKs of what we
sent, FIN, text, RST, and old or unacceptable ones), and records each
step as a `Transition` in RFC 9293 Figure 5's terms: "rcv SYN /
snd SYN,ACK".  Which part of section 3.10 decided a step is read off the
handlers the step ran (their docstrings name the RFC steps), so the
table's "RFC step" column cannot drift from the code either.

The peer's segments are chosen relative to the TCB (SEG.SEQ = RCV.NXT,
SEG.ACK = SND.NXT and so on); text is bounded to a few octets each way so
the exploration is finite.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import CodeType, FrameType, ModuleType
from typing import Any

from synack.model import arrives, calls, timeouts
from synack.model.config import Config
from synack.model.endpoint import step
from synack.model.segment import Flags, Segment
from synack.model.seq import seq_add, seq_sub
from synack.model.tcb import Tcb, closed
from synack.model.timeouts import retry_limit
from synack.model.types import (
    FIN_RECEIVED,
    AbortCall,
    CloseCall,
    Emit,
    Event,
    OpenCall,
    Output,
    ReceiveCall,
    SegmentArrives,
    SendCall,
    Signal,
    State,
    Timeout,
    TimerKind,
)

SYN, ACK, FIN, RST = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST
PEER_ISS = 300
OUR_ISS = 100
PEER_WND = 8
TEXT_BOUND = 1
"""Octets of text each way the exploration sends at most (keeps it finite)."""
MAX_TCBS = 50_000
NEW_SYN_DISTANCE = 5000
"""A new incarnation's SYN reaching TIME-WAIT lies this far above RCV.NXT."""


@dataclass(frozen=True, order=True)
class Transition:
    """One kind of step: in `state`, `event` (under `guard`) leads to `next_state`."""

    state: State
    event: str
    guard: str
    next_state: State
    outputs: str
    rfc_step: str

    @property
    def changes_state(self) -> bool:
        return self.state is not self.next_state

    @property
    def label(self) -> str:
        """Figure 5's "event / action" label."""
        return f"{self.event} / {self.outputs}"


@dataclass
class EndpointGraph:
    """Every transition kind found, how often, and one TCB it was seen from."""

    cfg: Config
    tcbs: int = 0
    steps: int = 0
    complete: bool = True
    transitions: dict[Transition, int] = field(default_factory=dict)
    example: dict[Transition, str] = field(default_factory=dict)

    def sorted(self) -> list[Transition]:
        order = list(State)
        return sorted(
            self.transitions,
            key=lambda t: (order.index(t.state), order.index(t.next_state), t.event, t.guard),
        )

    def state_changes(self) -> list[Transition]:
        return [t for t in self.sorted() if t.changes_state]

    def states(self) -> set[State]:
        return {t.state for t in self.transitions} | {t.next_state for t in self.transitions}


# ------------------------------------------------------------ the alphabet


def events(tcb: Tcb) -> Iterator[tuple[Event, str, str]]:
    """(event, Figure 5 name, guard) for everything that can happen to `tcb` next."""
    state = tcb.state
    yield OpenCall(active=True), "active OPEN", ""
    yield OpenCall(active=False), "passive OPEN", ""
    if state is State.CLOSED:
        yield OpenCall(active=False, remote=True), "passive OPEN", "remote socket named"
    sent = 0 if state in (State.CLOSED, State.LISTEN) else seq_sub(tcb.snd_nxt, tcb.iss)
    if not tcb.snd_buf and sent <= TEXT_BOUND and not reborn(tcb):
        guard = ""
        if state is State.LISTEN:
            guard = "remote socket named" if tcb.remote_specified else "remote socket unnamed"
        yield SendCall(b"x"), "SEND", guard
    if tcb.rcv_buf or state in FIN_RECEIVED:
        # (A RECEIVE with nothing to read only waits: no transition of its own.)
        yield ReceiveCall(), "RECEIVE", "text queued" if tcb.rcv_buf else ""
    yield CloseCall(), "CLOSE", "text queued" if tcb.snd_buf else ""
    yield AbortCall(), "ABORT", ""
    for kind in sorted(tcb.timers, key=lambda k: k.value):
        yield Timeout(kind), _timeout_name(kind), _timeout_guard(tcb, kind)
    for seg in peer_segments(tcb):
        name, guard = classify(tcb, seg)
        yield SegmentArrives(seg), name, guard


def reborn(tcb: Tcb) -> bool:
    """A connection made from TIME-WAIT by a new SYN (linux): explored without text."""
    return tcb.state not in (State.CLOSED, State.LISTEN, State.SYN_SENT) and tcb.irs != PEER_ISS


def _timeout_name(kind: TimerKind) -> str:
    return {
        TimerKind.RETRANSMISSION: "retransmission timeout",
        TimerKind.TIME_WAIT: "Timeout=2MSL",
        TimerKind.USER: "user timeout",
    }[kind]


def _timeout_guard(tcb: Tcb, kind: TimerKind) -> str:
    if kind is not TimerKind.RETRANSMISSION:
        return ""
    limit = retry_limit(tcb)
    return "retries left" if tcb.retries < limit else f"retry limit ({limit}) reached"


def peer_segments(tcb: Tcb) -> list[Segment]:
    """What a peer can send `tcb` next: the right segments, and wrong or old ones."""
    state = tcb.state
    segs = [Segment(SYN, PEER_ISS, 0, PEER_WND)]
    if state in (State.CLOSED, State.LISTEN):
        return [*segs, Segment(RST, PEER_ISS), Segment(ACK, PEER_ISS, 4242, PEER_WND)]
    una, nxt = tcb.snd_una, tcb.snd_nxt
    if state is State.SYN_SENT:
        return [
            *segs,
            Segment(SYN | ACK, PEER_ISS, nxt, PEER_WND),
            Segment(SYN | ACK, PEER_ISS, seq_add(nxt, 100), PEER_WND),
            Segment(RST | ACK, 0, nxt),
        ]
    rcv = tcb.rcv_nxt
    acks = [nxt] if una == nxt else [nxt, una]
    segs = [Segment(SYN, tcb.irs, 0, PEER_WND)]  # the peer's SYN again (or an old one)
    if state is State.TIME_WAIT and tcb.irs == PEER_ISS:  # (one new incarnation at most)
        segs.append(Segment(SYN, seq_add(tcb.rcv_nxt, NEW_SYN_DISTANCE), 0, PEER_WND))
    if state is State.SYN_RECEIVED:
        segs.append(Segment(SYN | ACK, tcb.irs, nxt, PEER_WND))
    peer_done = state in FIN_RECEIVED  # the peer's FIN is in: it sends nothing new
    for ack in acks:
        segs.append(Segment(ACK, rcv, ack, PEER_WND))
        if not peer_done:
            segs.append(Segment(FIN | ACK, rcv, ack, PEER_WND))
    if not peer_done and seq_sub(rcv, tcb.irs) <= TEXT_BOUND and not reborn(tcb):
        segs.append(Segment(ACK, rcv, una, PEER_WND, b"y"))
    if peer_done:
        segs.append(Segment(FIN | ACK, seq_add(rcv, -1), nxt, PEER_WND))  # FIN retransmitted
    segs.append(Segment(RST, rcv))
    segs.append(Segment(ACK, seq_add(rcv, -1000), nxt, PEER_WND))  # old, outside the window
    return segs


def classify(tcb: Tcb, seg: Segment) -> tuple[str, str]:
    """Figure 5's name for an arriving segment ("rcv ACK of FIN") and its guard."""
    guard: list[str] = []
    if tcb.state not in (State.CLOSED, State.LISTEN, State.SYN_SENT):
        guard.append(_relation("SEG.SEQ", seg.seq, [("RCV.NXT", tcb.rcv_nxt)]))
    if seg.has_ack and tcb.state not in (State.CLOSED, State.LISTEN):
        guard.append(
            _relation("SEG.ACK", seg.ack, [("SND.NXT", tcb.snd_nxt), ("SND.UNA", tcb.snd_una)])
        )
    if seg.rst:
        return "rcv RST", ", ".join(guard)
    names = _contents(seg)
    acked = seg.has_ack and seq_sub(seg.ack, tcb.snd_una) > 0 and seg.ack == tcb.snd_nxt
    if seg.has_ack and not seg.syn and tcb.state not in (State.CLOSED, State.LISTEN):
        if acked and tcb.fin_sent:
            names.append("ACK of FIN")
        elif acked and tcb.syn_unacked:
            names.append("ACK of SYN")
        elif not names:
            names.append("ACK")
    if not names:
        names.append("ACK" if seg.has_ack else "segment")
    return "rcv " + ", ".join(names), ", ".join(guard)


def _relation(name: str, value: int, marks: list[tuple[str, int]]) -> str:
    for mark, at in marks:
        if value == at:
            return f"{name} = {mark}"
    mark, at = marks[0]
    distance = seq_sub(value, at)
    if distance >= 1 << 31:
        return f"{name} < {mark}"
    return f"{name} > {mark}"


# ------------------------------------------------------------- outputs


def describe_outputs(outputs: tuple[Output, ...], before: Tcb, after: Tcb) -> str:
    """Figure 5's action: the segments sent ("snd SYN,ACK"), else "x"."""
    parts = []
    for out in outputs:
        if isinstance(out, Emit):
            parts.append("snd " + _segment_name(out.segment))
        elif isinstance(out, Signal):
            parts.append(f'signal "{out.reply.value}"')
    if before.state is State.CLOSED and after.state is not State.CLOSED:
        parts.insert(0, "create TCB")
    if after.state is State.CLOSED and before.state is not State.CLOSED:
        parts.append("delete TCB")
    return "; ".join(dict.fromkeys(parts)) or "x"


def _contents(seg: Segment) -> list[str]:
    """What a segment carries, in Figure 5's words: SYN or SYN,ACK, text, FIN."""
    names = []
    if seg.syn:
        names.append("SYN,ACK" if seg.has_ack else "SYN")
    if seg.payload:
        names.append("text")
    if seg.fin:
        names.append("FIN")
    return names


def _segment_name(seg: Segment) -> str:
    if seg.rst:
        return "RST,ACK" if seg.has_ack else "RST"
    return ",".join(_contents(seg)) or "ACK"


# ------------------------------------------------------------ RFC steps


_ORDINALS = ("First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth")
_KERNEL_FUNCTION = re.compile(r"(\w+\(\))")


def _step_label(doc: str) -> tuple[bool, str] | None:
    """(is a section, label) from a handler's docstring, or None if it names no step."""
    lines = doc.strip().splitlines()
    if not lines:
        return None
    first = lines[0]
    if first.startswith("3.10"):
        return True, first.rstrip(".").split(":")[0]
    if first.split(",")[0].split(" ")[0] in _ORDINALS:
        return False, first.split(".")[0].split(":")[0].rstrip()
    if "TIMEOUT" in first.split(":")[0]:
        return True, "3.10.8 " + first.split(":")[0]
    if first.startswith("Linux"):
        kernel = _KERNEL_FUNCTION.search(doc)
        return False, "linux " + (kernel.group(1) if kernel else first)
    return None


def _step_codes(*modules: ModuleType) -> dict[CodeType, tuple[bool, str]]:
    codes: dict[CodeType, tuple[bool, str]] = {}
    for module in modules:
        for value in vars(module).values():
            code = getattr(value, "__code__", None)
            if code is None or getattr(value, "__module__", None) != module.__name__:
                continue
            label = _step_label(value.__doc__ or "")
            if label is not None:
                codes[code] = label
    return codes


STEP_CODES = _step_codes(calls, arrives, timeouts)


def traced_step(tcb: Tcb, event: Event) -> tuple[Tcb, tuple[Output, ...], str]:
    """`model.step`, and the RFC steps its handlers ran ("3.10.7.4 ...; Fifth, ...")."""
    sections: list[str] = []
    checks: list[str] = []

    def profile(frame: FrameType, what: str, arg: Any) -> None:
        if what == "call":
            label = STEP_CODES.get(frame.f_code)
            if label is not None:
                (sections if label[0] else checks).append(label[1])

    previous: Callable[..., Any] | None = sys.getprofile()
    sys.setprofile(profile)
    try:
        after, outputs = step(tcb, event)
    finally:
        sys.setprofile(previous)
    where = "; ".join(dict.fromkeys(sections[:1] + checks[-1:]))
    return after, outputs, where


# ---------------------------------------------------------- exploration


def normalized(tcb: Tcb) -> Tcb:
    """A CLOSED endpoint forgets everything but its configuration: one CLOSED node."""
    return closed(tcb.cfg, (OUR_ISS,)) if tcb.state is State.CLOSED else tcb


def explore_endpoint(cfg: Config, max_tcbs: int = MAX_TCBS) -> EndpointGraph:
    """Breadth-first over TCBs from CLOSED; every step recorded as a `Transition`."""
    start = closed(cfg, (OUR_ISS,))
    graph = EndpointGraph(cfg)
    seen = {start}
    queue = deque([start])
    while queue:
        tcb = queue.popleft()
        graph.tcbs += 1
        for event, name, guard in events(tcb):
            after, outputs, where = traced_step(tcb, event)
            graph.steps += 1
            if (after, outputs) == (tcb, ()):
                continue  # nothing happened: not a transition
            transition = Transition(
                tcb.state,
                name,
                guard,
                after.state,
                describe_outputs(outputs, tcb, after),
                where,
            )
            graph.transitions[transition] = graph.transitions.get(transition, 0) + 1
            graph.example.setdefault(transition, f"{tcb.describe()} <- {_event_text(event)}")
            after = normalized(after)
            if after not in seen:
                if len(seen) >= max_tcbs:
                    graph.complete = False
                    continue
                seen.add(after)
                queue.append(after)
    return graph


def _event_text(event: Event) -> str:
    if isinstance(event, SegmentArrives):
        return str(event.segment)
    if isinstance(event, Timeout):
        return f"{event.kind.value} timeout"
    return type(event).__name__.removesuffix("Call").upper()
