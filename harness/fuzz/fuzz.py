"""The fuzzing engine: adversarial examples, run against a target with the oracle.

An example is abstract: the open the target makes, the peer's ISN, and a
list of actions whose sequence and acknowledgment numbers are *choices
relative to the target's state* (exact, in the window, just outside it,
old, future, a random 32-bit value).  They are resolved when the action
runs, against a state the oracle holds consistent with the target, so
the same example means the same thing against a target with other ISNs
(a real stack picks its own).  This is also what makes a saved finding
replayable against the kernel.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from hypothesis import strategies as st

from synack.harness.fuzz.oracle import KNOWN_FLAGS, Divergence, Oracle, event_class
from synack.harness.fuzz.targets.base import AppCall, CallName, Observation, Role, Target, Traits
from synack.model.config import RFC_ALLOWED, Config
from synack.model.segment import Flags, Segment
from synack.model.seq import MASK, seq_add, seq_sub
from synack.model.tcb import Tcb, closed
from synack.model.types import SYNCHRONIZED, Event, OpenCall, SegmentArrives, State

Json = dict[str, Any]

SEQ_PICKS = ("exact", "window", "outside", "old", "future", "random", "last")
""""last" (the window's last number, RCV.NXT+RCV.WND-1, less n) is for directed checks
only: generation draws from SEQ_TABLE, which leaves it out."""
ACK_PICKS = ("exact", "una", "window", "old", "future", "random")
FAR = 100_000


@dataclass(frozen=True, slots=True)
class Pick:
    """A sequence-number choice relative to the target's state."""

    kind: str
    n: int = 0


@dataclass(frozen=True, slots=True)
class Inject:
    flags: int
    seq: Pick
    ack: Pick
    size: int = 0
    up: int = 0

    def __str__(self) -> str:
        text = f" +{self.size}" if self.size else ""
        return f"inject {Flags(self.flags)} seq={self.seq.kind} ack={self.ack.kind}{text}"


@dataclass(frozen=True, slots=True)
class Call:
    name: CallName
    size: int = 0

    def __str__(self) -> str:
        return f"{self.name.value}({self.size})" if self.name is CallName.SEND else self.name.value


@dataclass(frozen=True, slots=True)
class Wait:
    def __str__(self) -> str:
        return "wait for a timer"


Action = Inject | Call | Wait


@dataclass(frozen=True, slots=True)
class Example:
    role: Role
    peer_iss: int
    target_iss: int
    actions: tuple[Action, ...]


# ------------------------------------------------------------- strategies

_COMMON = (
    Flags.ACK,
    Flags.SYN,
    Flags.SYN | Flags.ACK,
    Flags.FIN | Flags.ACK,
    Flags.RST,
    Flags.RST | Flags.ACK,
    Flags.ACK | Flags.PSH,
)


FORWARD: dict[State, tuple[Flags, ...]] = {
    State.CLOSED: (Flags.SYN,),
    State.LISTEN: (Flags.SYN,),
    State.SYN_SENT: (Flags.SYN | Flags.ACK,),
    State.SYN_RECEIVED: (Flags.ACK,),
    State.ESTABLISHED: (Flags.ACK, Flags.FIN | Flags.ACK),
    State.FIN_WAIT_1: (Flags.ACK, Flags.FIN | Flags.ACK),
    State.FIN_WAIT_2: (Flags.ACK, Flags.FIN | Flags.ACK),
    State.CLOSE_WAIT: (Flags.ACK,),
    State.CLOSING: (Flags.ACK,),
    State.LAST_ACK: (Flags.ACK,),
    State.TIME_WAIT: (Flags.FIN | Flags.ACK, Flags.ACK),
}
"""What a well-behaved peer sends next from each state: the way deeper in."""

# Generation draws few choices per action (each hypothesis draw costs tens of
# microseconds): weighted tables drawn as an index, which shrink toward their
# first entry, stand in for nested `one_of`s.
FLAG_TABLE = tuple(int(f) for f in _COMMON) * 2 + tuple(range(64))
"""The usual flags most often, but any of the 64 combinations (invalid ones too)."""
ODD_FLAGS = tuple(f for f in range(64) if Flags(f & ~int(Flags.PSH)) not in KNOWN_FLAGS)
CLASS_FLAGS = {str(f): int(f) for f in KNOWN_FLAGS}
"""The flags of each segment event class ("ACK", "SYN,ACK", ...; oracle.event_class)."""
SEQ_TABLE = ("exact",) * 6 + ("window", "outside", "old", "future") + ("random",) * 2
ACK_TABLE = ("exact",) * 6 + ("una", "window", "old", "future") + ("random",) * 2
"""Half the time the exact value (what moves a connection on), often near it."""

CLOSING_STATES = (State.ESTABLISHED, State.CLOSE_WAIT)
"""The application's close is the way on from these (to FIN-WAIT-1, LAST-ACK)."""

Draw = Callable[[st.SearchStrategy[Any]], Any]
T = TypeVar("T")


class _Table(Generic[T]):
    """A weighted choice drawn as an index (cheaper than `sampled_from`; shrinks to [0])."""

    def __init__(self, entries: Sequence[T]) -> None:
        self.entries = tuple(entries)
        self.index = st.integers(0, len(self.entries) - 1)

    def draw(self, draw: Draw) -> T:
        return self.entries[draw(self.index)]


_SEQ_KINDS, _ACK_KINDS = _Table(SEQ_TABLE), _Table(ACK_TABLE)
_ANY_FLAGS, _ODD_FLAGS = _Table(FLAG_TABLE), _Table(ODD_FLAGS)
_NEAR, _ANYWHERE = st.integers(0, 64), st.integers(0, MASK)
_SIZES = {n: st.integers(-2 * n, n) for n in (12, 40)}  # max(0, size): two in three no text
_UP, _CALL_SIZE, _ONE_IN_EIGHT = st.integers(0, 8), st.integers(1, 20), st.integers(0, 7)
_CALLS = _Table(list(CallName))
_CLOSING_CALLS = _Table([CallName.SHUTDOWN, CallName.SEND])


@functools.cache
def _kinds(state: State, waits: bool) -> _Table[str]:
    """What the next action is, weighted: mostly the way on from `state`."""
    forward = ("forward",) * 8
    closing = ("closing",) * 4 if state in CLOSING_STATES else ()
    anything = ("inject",) * 3 + ("call",) + (("wait",) if waits else ())
    return _Table((*forward, *closing, *anything, "steer", "steer"))


@functools.cache
def _forward_flags(state: State) -> _Table[int]:
    return _Table([int(f) for f in FORWARD[state]])


@functools.cache
def _one_of(classes: tuple[str, ...]) -> _Table[str]:
    return _Table(classes)


def _draw_pick(draw: Draw, kinds: _Table[str]) -> Pick:
    kind = kinds.draw(draw)
    if kind == "exact":
        return Pick(kind)
    return Pick(kind, draw(_ANYWHERE if kind == "random" else _NEAR))


def _inject(draw: Draw, flags: int, max_size: int) -> Inject:
    seq, ack = _draw_pick(draw, _SEQ_KINDS), _draw_pick(draw, _ACK_KINDS)
    size = max(0, draw(_SIZES[max_size]))
    up = draw(_UP) if flags & Flags.URG else 0
    return Inject(flags, seq, ack, size, up)


STEERED_CALLS = {
    "call:send": CallName.SEND,
    "call:receive": CallName.RECV,
    "call:close": CallName.SHUTDOWN,
    "call:abort": CallName.ABORT,
}


def _of_class(draw: Draw, event_class: str) -> Action:
    """An action of the coverage event class `event_class` (oracle.EVENT_CLASSES)."""
    if event_class in STEERED_CALLS:
        return Call(STEERED_CALLS[event_class], draw(_CALL_SIZE))
    if event_class.startswith("timeout:"):
        return Wait()
    if event_class == "odd-flags":
        return _inject(draw, _ODD_FLAGS.draw(draw), 40)
    action = _inject(draw, CLASS_FLAGS[event_class.removesuffix("+text")], 40)
    text = event_class.endswith("+text")
    return replace(action, size=max(action.size, 1) if text else 0)


def draw_action(
    draw: Draw, state: State, waits: bool, rare_waits: bool, steer: tuple[str, ...] = ()
) -> tuple[Action, str | None]:
    """One action aimed at a target in `state`, and the event class it was steered to.

    `rare_waits`: a wait costs seconds, so seven in eight drawn waits become
    something else.  `steer`: event classes not yet exercised in `state`,
    which one action in nine aims at (coverage steering).
    """
    kind = _kinds(state, waits).draw(draw)
    if kind == "steer" and steer:
        aimed = _one_of(steer).draw(draw)
        return _of_class(draw, aimed), aimed
    if kind == "wait" and rare_waits and draw(_ONE_IN_EIGHT):
        kind = "inject"
    if kind == "forward":
        return _inject(draw, _forward_flags(state).draw(draw), 12), None
    if kind == "closing":
        return Call(_CLOSING_CALLS.draw(draw), 4), None
    if kind == "call":
        return Call(_CALLS.draw(draw), draw(_CALL_SIZE)), None
    if kind == "wait":
        return Wait(), None
    return _inject(draw, _ANY_FLAGS.draw(draw), 40), None


@functools.cache
def action_strategy(
    state: State, waits: bool, rare_waits: bool, steer: tuple[str, ...]
) -> st.SearchStrategy[tuple[Action, str | None]]:
    """`draw_action` as one strategy: a single draw from the test's data per action."""

    @st.composite
    def one(draw: st.DrawFn) -> tuple[Action, str | None]:
        return draw_action(draw, state, waits, rare_waits, steer)

    return one()


@dataclass(frozen=True, slots=True)
class Opening:
    """The part of an example drawn before any action: the open and the ISNs."""

    role: Role
    peer_iss: int
    target_iss: int


def openings() -> st.SearchStrategy[Opening]:
    return st.builds(
        Opening, st.sampled_from(list(Role)), st.integers(0, MASK), st.integers(0, MASK)
    )


ActionSource = Callable[[State, int], Action | None]
"""The next action for a target whose reference state is given (None: the example ends)."""


def from_list(actions: tuple[Action, ...]) -> ActionSource:
    return lambda _state, index: actions[index] if index < len(actions) else None


# ------------------------------------------------------------- resolving


def _seq_reference(tcb: Tcb, peer_iss: int) -> tuple[int, int]:
    """Where the target expects our next octet, and its window."""
    if tcb.state in (State.CLOSED, State.LISTEN, State.SYN_SENT):
        return peer_iss, max(tcb.rcv_wnd, 1)
    return tcb.rcv_nxt, tcb.rcv_wnd


def resolve_seq(pick: Pick, tcb: Tcb, peer_iss: int) -> int:
    ref, wnd = _seq_reference(tcb, peer_iss)
    if pick.kind == "exact":
        return ref
    if pick.kind == "window":
        return seq_add(ref, 1 + pick.n % max(wnd - 1, 1))
    if pick.kind == "outside":
        return seq_add(ref, wnd + pick.n % 4)
    if pick.kind == "old":
        return seq_sub(ref, 1 + pick.n % FAR)
    if pick.kind == "future":
        return seq_add(ref, wnd + 1000 + pick.n % FAR)
    if pick.kind == "last":
        return seq_add(ref, wnd - 1 - pick.n % max(wnd, 1))
    return pick.n & MASK


def resolve_ack(pick: Pick, tcb: Tcb) -> int:
    una, nxt = tcb.snd_una, tcb.snd_nxt
    if pick.kind == "exact":
        return nxt
    if pick.kind == "una":
        return una
    if pick.kind == "window":
        return seq_add(una, pick.n % (seq_sub(nxt, una) + 1))
    if pick.kind == "old":
        return seq_sub(una, 1 + pick.n % FAR)
    if pick.kind == "future":
        return seq_add(nxt, 1 + pick.n % FAR)
    return pick.n & MASK


def payload(size: int, salt: int) -> bytes:
    """Recognisable text: each step's octets differ from the others'."""
    return bytes((salt * 31 + i) & 0xFF for i in range(size))


def resolve_inject(action: Inject, tcb: Tcb, peer_iss: int, salt: int) -> Segment:
    flags = Flags(action.flags)
    return Segment(
        flags,
        resolve_seq(action.seq, tcb, peer_iss),
        resolve_ack(action.ack, tcb) if flags & Flags.ACK else 0,
        8192,
        payload(action.size, salt),
        action.up if flags & Flags.URG else 0,
    )


def call_allowed(call: CallName, states: frozenset[State]) -> bool:
    """Calls a real socket can make with the meaning the model gives them."""
    if call in (CallName.SEND, CallName.SHUTDOWN):
        return states <= {State.ESTABLISHED, State.CLOSE_WAIT}
    # In TIME-WAIT the connection no longer belongs to the socket (a timewait
    # socket has taken over), so close() cannot abort it.
    return states <= SYNCHRONIZED - {State.TIME_WAIT}


def held_back(call: CallName, candidates: frozenset[Tcb]) -> bool:
    """A send() or shutdown() whose segment a congestion window would hold back.

    After a retransmission timeout with text outstanding the congestion
    window is one segment (RFC 5681 3.1), so new text and the FIN wait for
    the retransmission's ACK.  The model has no congestion window.
    """
    if call not in (CallName.SEND, CallName.SHUTDOWN):
        return False
    return any(t.retries and t.in_flight for t in candidates)


def holds_gap(seg: Segment, tcb: Tcb) -> bool:
    """Text or FIN beginning above RCV.NXT: a stack that queues it (SHLD-31) differs."""
    receiving = tcb.state is State.SYN_RECEIVED or tcb.state in SYNCHRONIZED
    if not receiving or not (seg.payload or seg.fin):
        return False
    return 0 < seq_sub(seg.seq, tcb.rcv_nxt) < tcb.rcv_wnd


# --------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class StepRecord:
    action: str
    event: str
    states: tuple[str, ...]  # the candidates' states before the step
    sent: Segment | None
    observed: Observation
    after: tuple[str, ...]
    model_event: Event | None = None  # what the oracle applied (None: time only)
    waited: bool = False
    allowed: tuple[str, ...] = ()  # the RFC-allowed variations (RFC_ALLOWED ids) it took


@dataclass
class Run:
    example: Example
    steps: list[StepRecord] = field(default_factory=list)
    divergence: Divergence | None = None
    coverage: set[str] = field(default_factory=set)
    segments: int = 0
    anomalies: list[str] = field(default_factory=list)

    def signature(self) -> tuple[object, ...]:
        """What a divergence is about, to tell distinct findings apart."""
        assert self.divergence is not None
        last = self.steps[-1]
        observed = tuple(str(Flags(s.bits & ~int(Flags.PSH))) for s in last.observed.segments)
        expected = tuple(
            sorted(
                {
                    tuple(str(Flags(s.bits & ~int(Flags.PSH))) for s in p.segments)
                    for p in self.divergence.expected
                }
            )
        )
        user = tuple(type(u).__name__ for u in last.observed.user)
        return (last.states, last.event, observed, expected, user)


def run_example(
    target: Target,
    example: Example,
    cfg: Config,
    observe: Callable[[StepRecord], None] | None = None,
    source: ActionSource | None = None,
) -> Run:
    """Run one example on `target` with the oracle in lockstep; stop at a divergence.

    The actions come from `example.actions` or, when generating, from
    `source`, which sees the state the oracle holds; `run.example` then
    lists the actions drawn, so the run can be saved and replayed.
    """
    oracle = Oracle(closed(cfg), target.traits)
    run = Run(example)
    drawn: list[Action] = []
    next_action = source if source is not None else from_list(example.actions)

    def do(label: str, event: Event | None, sent: Segment | None, waited: bool = False) -> bool:
        before = oracle.states()
        observed = target.collect(oracle.expected_segments(event))
        run.segments += len(observed.segments) + (sent is not None)
        run.anomalies.extend(observed.anomalies)
        divergence, labels = oracle.advance(event, observed, waited)
        run.coverage |= labels
        record = StepRecord(
            label,
            event_class(event),
            before,
            sent,
            observed,
            oracle.states(),
            event,
            waited,
            oracle.allowed,
        )
        run.steps.append(record)
        if observe is not None:
            observe(record)
        if divergence is not None:
            run.divergence = divergence
            return False
        return True

    target.start(example.role, example.target_iss)
    opening = OpenCall(active=example.role is Role.ACTIVE)
    try:
        if do("connect()" if example.role is Role.ACTIVE else "listen()", opening, None):
            _run_actions(target, example, oracle, next_action, drawn, do)
    finally:
        run.example = replace(example, actions=tuple(drawn))
    return run


def allowed_variations(run: Run) -> dict[str, int]:
    """The RFC-allowed variations the target showed in `run`: each RFC_ALLOWED id and the
    number of steps it explained (steps nothing else the model allows explained).

    The one classification of both commands: a run without a divergence is no
    finding under any profile, and these are what `synack fuzz` counts as
    RFC-allowed variations and what gives a `synack conformance` check the
    verdict 'allowed'.
    """
    return dict(sorted(Counter(i for record in run.steps for i in record.allowed).items()))


def allowed_text(ids: Iterable[str]) -> str:
    """The labels of RFC-allowed variations (RFC_ALLOWED), with their sources."""
    return "RFC-allowed: " + "; ".join(f"{i} ({RFC_ALLOWED[i]})" for i in sorted(set(ids)))


def consistent_under(run: Run, cfg: Config, traits: Traits) -> bool:
    """Whether the model under `cfg` explains every step the target was seen to take."""
    oracle = Oracle(closed(cfg), traits)
    return all(oracle.advance(r.model_event, r.observed, r.waited)[0] is None for r in run.steps)


def _run_actions(
    target: Target,
    example: Example,
    oracle: Oracle,
    next_action: ActionSource,
    drawn: list[Action],
    do: Callable[[str, Event | None, Segment | None, bool], bool],
) -> None:
    number = 0
    while True:
        ref = oracle.reference()
        action = next_action(ref.state, number)
        if action is None:
            break
        drawn.append(action)
        number += 1
        if isinstance(action, Inject):
            seg = resolve_inject(action, ref, example.peer_iss, number)
            if target.traits.holds_out_of_order and any(
                holds_gap(seg, t) for t in oracle.candidates
            ):
                continue  # outside the model: see docs/fuzzing.md (SHLD-31)
            target.inject(seg)
            if not do(str(action), SegmentArrives(seg), seg, False):
                return
        elif isinstance(action, Call):
            states = frozenset(t.state for t in oracle.candidates)
            if not target.traits.calls_in_any_state and not call_allowed(action.name, states):
                continue
            if target.traits.congestion_control and held_back(action.name, oracle.candidates):
                continue  # outside the model: see docs/fuzzing.md (congestion window)
            call = AppCall(action.name, payload(action.size, number))
            target.call(call)
            if not do(str(call), call.event(), None, False):
                return
        else:
            if target.traits.slow_waits and not any(t.timers for t in oracle.candidates):
                continue  # no timer can fire: a real-time wait would only cost seconds
            target.wait()
            if not do(str(action), None, None, True):
                return
    do("(quiet)", None, None, False)


# ---------------------------------------------------------------- JSON


def pick_json(p: Pick) -> Json:
    return {"kind": p.kind, "n": p.n}


def action_to_json(action: Action) -> Json:
    if isinstance(action, Inject):
        return {
            "do": "inject",
            "flags": str(Flags(action.flags)),
            "seq": pick_json(action.seq),
            "ack": pick_json(action.ack),
            "size": action.size,
            "up": action.up,
        }
    if isinstance(action, Call):
        return {"do": "call", "call": action.name.value, "size": action.size}
    return {"do": "wait"}


def _flags(text: str) -> int:
    value = 0
    for name in text.split(","):
        if name and name != "-":
            value |= int(Flags[name])
    return value


def _pick(data: Json, kinds: tuple[str, ...]) -> Pick:
    kind = str(data["kind"])
    if kind not in kinds:
        raise ValueError(f"unknown choice {kind!r} (known: {', '.join(kinds)})")
    return Pick(kind, int(data.get("n", 0)))


def action_from_json(data: Json) -> Action:
    do = data.get("do")
    if do == "inject":
        return Inject(
            _flags(str(data["flags"])),
            _pick(data["seq"], SEQ_PICKS),
            _pick(data["ack"], ACK_PICKS),
            int(data.get("size", 0)),
            int(data.get("up", 0)),
        )
    if do == "call":
        return Call(CallName(str(data["call"])), int(data.get("size", 0)))
    if do == "wait":
        return Wait()
    raise ValueError(f"unknown action {do!r}")


def example_to_json(example: Example) -> Json:
    return {
        "role": example.role.value,
        "peer_iss": example.peer_iss,
        "target_iss": example.target_iss,
        "actions": [action_to_json(a) for a in example.actions],
    }


def example_from_json(data: Json) -> Example:
    return Example(
        Role(str(data["role"])),
        int(data["peer_iss"]) & MASK,
        int(data["target_iss"]) & MASK,
        tuple(action_from_json(a) for a in data["actions"]),
    )
