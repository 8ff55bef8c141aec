"""A system: two endpoints, the network between them, and one program per side.

`enabled(system, state)` lists the actions possible in a state, in a
deterministic order; `transition(system, state, action)` applies one and
says what happened; `successors` combines the two.  Actions are values
that name what they do (not indices), so a path of actions replays.

Time is not modelled; timers are ordered against the network by two
abstractions.  2 MSL: the TIME-WAIT timer expires only when no segment
is in flight (every segment sent before has been delivered or has died)
and the peer is not retransmitting: 2 MSL outlasts the peer's
retransmissions, which is what TIME-WAIT is sized for ("to be sure the
remote TCP peer received the acknowledgment", RFC 9293 3.3.2).
RTO: by default a retransmission or user timer also expires only when
nothing is in flight, i.e. the timeout is long compared with a round
trip, so a retransmission repairs a loss rather than racing its
original.  `eager_timers=True` lets them expire at any moment (spurious
retransmissions included), at the price of a much larger state space.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import Enum

from . import network as netmod
from .endpoint import step
from .ghost import App, observe
from .network import Direction, Network, NetworkConfig
from .scripts import Op, Wait
from .segment import Segment
from .tcb import Tcb
from .types import (
    Emit,
    Event,
    Output,
    ReceiveCall,
    Reply,
    SegmentArrives,
    State,
    Timeout,
    TimerKind,
)
from .values import cached_hash


class Side(Enum):
    CLIENT = "client"
    SERVER = "server"

    def __str__(self) -> str:
        return self.value

    @property
    def outbound(self) -> Direction:
        return Direction.C2S if self is Side.CLIENT else Direction.S2C

    @property
    def peer(self) -> Side:
        return Side.SERVER if self is Side.CLIENT else Side.CLIENT


SIDES = (Side.CLIENT, Side.SERVER)
"""Both sides, in the fixed order used everywhere (iterating an Enum class is slow)."""
DIRECTIONS = (Direction.C2S, Direction.S2C)


def receiver(direction: Direction) -> Side:
    return Side.SERVER if direction is Direction.C2S else Side.CLIENT


@cached_hash
@dataclass(frozen=True, slots=True, order=True)
class Envelope:
    """A segment in flight, tagged with the incarnation of the program that sent it.

    The tag is ghost state: no endpoint reads it; properties use it to tell
    an old duplicate from a segment of the current incarnation.
    """

    segment: Segment
    incarnation: int
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.segment} (inc {self.incarnation})"


@cached_hash
@dataclass(frozen=True, slots=True)
class SystemState:
    client: Tcb
    server: Tcb
    net: Network[Envelope]
    client_app: App = field(default_factory=App)
    server_app: App = field(default_factory=App)
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def tcb(self, side: Side) -> Tcb:
        return self.client if side is Side.CLIENT else self.server

    def app(self, side: Side) -> App:
        return self.client_app if side is Side.CLIENT else self.server_app

    def with_side(self, side: Side, tcb: Tcb, app: App) -> SystemState:
        if side is Side.CLIENT:
            return SystemState(tcb, self.server, self.net, app, self.server_app)
        return SystemState(self.client, tcb, self.net, self.client_app, app)

    def with_net(self, net: Network[Envelope]) -> SystemState:
        return SystemState(self.client, self.server, net, self.client_app, self.server_app)

    def describe(self) -> str:
        return (
            f"client {self.client.state} | server {self.server.state} | {len(self.net)} in flight"
        )


@dataclass(frozen=True, slots=True)
class System:
    """A named system: the programs, the network semantics and the initial state."""

    name: str
    client_script: tuple[Op, ...]
    server_script: tuple[Op, ...]
    net_cfg: NetworkConfig
    initial: SystemState
    eager_timers: bool = False
    # Endpoint steps are deterministic, so their results are memoized by value;
    # the cache changes nothing but speed (exploration meets the same
    # (TCB, program, event) many times in different network contexts).
    memo: dict[object, tuple[Tcb, App, tuple[Output, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def ghost_cap(self) -> int:
        """Where the ghost transmission counters saturate: past every retry limit."""
        cfg = self.initial.client.cfg
        return max(cfg.syn_retries, cfg.synack_retries, cfg.retries) + 2

    def script(self, side: Side) -> tuple[Op, ...]:
        return self.client_script if side is Side.CLIENT else self.server_script

    def app_done(self, state: SystemState, side: Side) -> bool:
        app = state.app(side)
        return app.error is not None or app.pc >= len(self.script(side))


# ----------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class AppStep:
    """The program on `side` performs its next op."""

    side: Side

    def __str__(self) -> str:
        return f"{self.side}: next call"


@dataclass(frozen=True, slots=True)
class DeliverSegment:
    """The network delivers `envelope`; with `keep_copy`, a duplicate stays in flight."""

    direction: Direction
    envelope: Envelope
    keep_copy: bool = False

    def __str__(self) -> str:
        how = "deliver+duplicate" if self.keep_copy else "deliver"
        return f"net: {how} {self.direction} {self.envelope}"


@dataclass(frozen=True, slots=True)
class LoseSegment:
    direction: Direction
    envelope: Envelope

    def __str__(self) -> str:
        return f"net: lose {self.direction} {self.envelope}"


@dataclass(frozen=True, slots=True)
class FireTimer:
    side: Side
    kind: TimerKind

    def __str__(self) -> str:
        return f"{self.side}: {self.kind.value} timeout"


Action = AppStep | DeliverSegment | LoseSegment | FireTimer


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What one transition did, for charts and properties."""

    action: Action
    op_label: str | None
    side: Side | None
    outputs: tuple[Output, ...]
    sent: tuple[Envelope, ...]
    overflowed: tuple[Envelope, ...]
    received: Envelope | None = None

    @property
    def label(self) -> str:
        """What happened, for people: the program's call, or the action."""
        return self.op_label or str(self.action)


class NotEnabled(ValueError):
    """An action was applied in a state where it is not enabled."""


# ---------------------------------------------------------------- semantics


def enabled(system: System, state: SystemState) -> list[Action]:
    """Every action enabled in `state`, in a fixed order."""
    actions: list[Action] = []
    for side in SIDES:
        if _op_enabled(system, state, side):
            actions.append(AppStep(side))
    cfg = system.net_cfg
    for direction in DIRECTIONS:
        for env in netmod.deliverable(state.net, cfg, direction):
            actions.append(DeliverSegment(direction, env))
            if netmod.can_duplicate(state.net):
                actions.append(DeliverSegment(direction, env, keep_copy=True))
            if cfg.loss:
                actions.append(LoseSegment(direction, env))
    for side in SIDES:
        for kind in sorted(state.tcb(side).timers, key=lambda k: k.value):
            quiet_only = kind is TimerKind.TIME_WAIT or not system.eager_timers
            if quiet_only and not state.net.empty:
                continue  # the timeout has not passed while a segment may still arrive
            peer_timers = state.tcb(side.peer).timers
            if kind is TimerKind.TIME_WAIT and TimerKind.RETRANSMISSION in peer_timers:
                continue  # 2 MSL outlasts the peer's retransmissions
            actions.append(FireTimer(side, kind))
    return actions


def _op_enabled(system: System, state: SystemState, side: Side) -> bool:
    if system.app_done(state, side):
        return False
    op = system.script(side)[state.app(side).pc]
    tcb = state.tcb(side)
    if op.wait is not None:
        return _reached(op, tcb, state.app(side)) or tcb.state is State.CLOSED
    if op.needs_closed:
        return tcb.state is State.CLOSED
    return True


def _reached(op: Op, tcb: Tcb, app: App) -> bool:
    if op.wait is Wait.EOF:
        return app.eof
    return op.wait is not None and op.wait.reached(tcb)


def successors(system: System, state: SystemState) -> Iterator[tuple[Action, SystemState]]:
    for action in enabled(system, state):
        yield action, apply(system, state, action)[0]


def transition(system: System, state: SystemState, action: Action) -> tuple[SystemState, StepInfo]:
    """Apply `action`; raises NotEnabled if it is not enabled in `state`."""
    if action not in enabled(system, state):
        raise NotEnabled(f"{action} is not enabled in state: {state.describe()}")
    return apply(system, state, action)


def apply(system: System, state: SystemState, action: Action) -> tuple[SystemState, StepInfo]:
    """Apply an action known to be enabled in `state` (as `enabled` listed it)."""
    if isinstance(action, AppStep):
        return _app_step(system, state, action)
    if isinstance(action, DeliverSegment):
        net = netmod.deliver(state.net, action.direction, action.envelope, action.keep_copy)
        side = receiver(action.direction)
        env = action.envelope
        new, info = _endpoint_step(
            system, state.with_net(net), side, SegmentArrives(env.segment), action, env.incarnation
        )
        new = _note_syn_accepted(state, new, side, env)
        return new, replace(info, received=env)
    if isinstance(action, LoseSegment):
        net = netmod.remove(state.net, action.direction, action.envelope)
        return state.with_net(net), StepInfo(action, None, None, (), (), ())
    return _endpoint_step(system, state, action.side, Timeout(action.kind), action)


def _note_syn_accepted(
    before: SystemState, after: SystemState, receiver: Side, env: Envelope
) -> SystemState:
    """Ghost: record on the sender that the receiver accepted its current SYN."""
    app = after.app(receiver)
    if app.irs_from == before.app(receiver).irs_from or app.irs_from != env.incarnation:
        return after
    sender = receiver.peer
    sender_app = after.app(sender)
    if sender_app.incarnation != env.incarnation:
        return after  # the SYN's sender has moved on: an old duplicate
    return after.with_side(
        sender, after.tcb(sender), replace(sender_app, accepted_by=app.incarnation)
    )


def _app_step(system: System, state: SystemState, action: AppStep) -> tuple[SystemState, StepInfo]:
    side = action.side
    app = state.app(side)
    op = system.script(side)[app.pc]
    tcb = state.tcb(side)
    if op.wait is not None:
        error = None
        if not _reached(op, tcb, app):
            error = Reply.ERROR_DOES_NOT_EXIST  # the TCB vanished without a signal
        new_app = replace(app, pc=app.pc + 1, error=error)
        info = StepInfo(action, f"{side}: {op}", side, (), (), ())
        return state.with_side(side, tcb, new_app), info
    app = replace(app, pc=app.pc + 1)
    if op.new_incarnation:
        app = app.new_incarnation()
    state = state.with_side(side, tcb, app)
    assert op.call is not None
    new, info = _endpoint_step(system, state, side, op.call, action)
    return new, replace(info, op_label=f"{side}: {op}")


def _endpoint_step(
    system: System,
    state: SystemState,
    side: Side,
    event: Event,
    action: Action,
    sender_incarnation: int = 0,
) -> tuple[SystemState, StepInfo]:
    before, app = state.tcb(side), state.app(side)
    key = (before, app, event, sender_incarnation)
    cached = system.memo.get(key)
    if cached is None:
        tcb, outputs = step(before, event)
        if tcb.rcv_buf:
            # The program is always reading: hand over whatever the TCP queued.
            tcb, more = step(tcb, ReceiveCall())
            outputs += more
        app = observe(app, before, tcb, event, outputs, sender_incarnation, system.ghost_cap)
        cached = system.memo[key] = (tcb, app, outputs)
    tcb, app, outputs = cached
    state = state.with_side(side, tcb, app)
    net = state.net
    sent: list[Envelope] = []
    lost: list[Envelope] = []
    for out in outputs:
        if isinstance(out, Emit):
            env = Envelope(out.segment, app.incarnation)
            net, overflowed = netmod.send(net, system.net_cfg, side.outbound, env)
            (lost if overflowed else sent).append(env)
    state = state.with_net(net)
    return state, StepInfo(action, None, side, outputs, tuple(sent), tuple(lost))
