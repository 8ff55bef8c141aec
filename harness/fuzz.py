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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st

from synack.model.config import Config
from synack.model.segment import Flags, Segment
from synack.model.seq import MASK, seq_add, seq_sub
from synack.model.tcb import Tcb, closed
from synack.model.types import SYNCHRONIZED, Event, OpenCall, SegmentArrives, State

from .oracle import Divergence, Oracle, event_class
from .targets import AppCall, CallName, Observation, Role, Target, Traits

Json = dict[str, Any]

SEQ_PICKS = ("exact", "window", "outside", "old", "future", "random")
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


@functools.cache
def picks(kinds: tuple[str, ...]) -> st.SearchStrategy[Pick]:
    """Mostly the exact value (that is what moves a connection on), often near it."""
    exact = st.just(Pick(kinds[0]))
    near = st.builds(Pick, st.sampled_from(kinds[1:-1]), st.integers(0, 64))
    wild = st.builds(Pick, st.just(kinds[-1]), st.integers(0, MASK))
    return st.one_of(exact, exact, exact, near, near, wild)


@functools.cache
def actions(waits: bool = True, text_sizes: int = 40) -> st.SearchStrategy[Action]:
    flags = st.one_of(
        st.sampled_from([int(f) for f in _COMMON]),
        st.sampled_from([int(f) for f in _COMMON]),
        st.integers(0, 63),  # any combination, invalid ones included
    )
    sizes = st.one_of(st.just(0), st.just(0), st.integers(1, text_sizes))
    inject = st.builds(Inject, flags, picks(SEQ_PICKS), picks(ACK_PICKS), sizes, st.integers(0, 8))
    call = st.builds(Call, st.sampled_from(list(CallName)), st.integers(1, 20))
    choices: list[st.SearchStrategy[Action]] = [inject, inject, inject, inject, call]
    if waits:
        choices.append(st.just(Wait()))
    return st.one_of(*choices)


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


@functools.cache
def actions_from(state: State, waits: bool = True) -> st.SearchStrategy[Action]:
    """Actions aimed at a target in `state`: half the time the segment that moves it on."""
    forward = st.builds(
        Inject,
        st.sampled_from([int(f) for f in FORWARD[state]]),
        picks(SEQ_PICKS),
        picks(ACK_PICKS),
        st.one_of(st.just(0), st.just(0), st.integers(1, 12)),
        st.just(0),
    )
    if state in (State.ESTABLISHED, State.CLOSE_WAIT):
        # The application's close is the way on from here (to FIN-WAIT-1, LAST-ACK).
        closing = st.builds(Call, st.sampled_from([CallName.SHUTDOWN, CallName.SEND]), st.just(4))
        return st.one_of(forward, closing, forward, actions(waits))
    return st.one_of(forward, forward, actions(waits))


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
            label, event_class(event), before, sent, observed, oracle.states(), event, waited
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
