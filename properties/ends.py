"""What counts as a proper end of a run, for the liveness properties.

A sink of the state graph (no action enabled) is a proper end when every
program is done, or when each program still blocked is blocked for a
reason TCP documents and does not solve:

* an idle listener: blocked in accept() with the endpoint in LISTEN;
* a half-open connection (RFC 9293 3.5.1): the peer's program has ended
  abnormally (an error, or close() with SO_LINGER 0) and its TCB is gone,
  so nothing will ever arrive; TCP only discovers this when it sends, and
  keep-alives are optional (RFC 9293 3.8.4).

Anything else, e.g. both programs blocked waiting for each other, is a
deadlock.
"""

from __future__ import annotations

from enum import Enum

from synack.model.system import SIDES, Side, System, SystemState
from synack.model.types import AbortCall, State


class End(Enum):
    COMPLETE = "complete"
    IDLE_OR_HALF_OPEN = "idle listener or half-open"
    NONE = "not an end"


def _peer_gone(system: System, state: SystemState, side: Side) -> bool:
    peer = side.peer
    app = state.app(peer)
    if not system.app_done(state, peer) or state.tcb(peer).state not in (
        State.CLOSED,
        State.LISTEN,
    ):
        return False
    if app.error is not None:
        return True
    script = system.script(peer)
    last = script[app.pc - 1] if app.pc else None
    return last is not None and isinstance(last.call, AbortCall)


def end_kind(system: System, state: SystemState) -> End:
    """Classify a state in which nothing more can happen."""
    blocked = [side for side in SIDES if not system.app_done(state, side)]
    if not blocked:
        return End.COMPLETE
    for side in blocked:
        idle = state.tcb(side).state is State.LISTEN
        if not idle and not _peer_gone(system, state, side):
            return End.NONE
    return End.IDLE_OR_HALF_OPEN


def blocked_description(system: System, state: SystemState) -> str:
    parts = []
    for side in SIDES:
        if not system.app_done(state, side):
            op = system.script(side)[state.app(side).pc]
            parts.append(f"{side} blocked in {op} ({state.tcb(side).state})")
    return "; ".join(parts) or "every program is done"
