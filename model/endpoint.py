"""The endpoint's single entry point: `step(tcb, event) -> (tcb, outputs)`.

Theory of operation.  An endpoint is a frozen `Tcb` value.  `step` looks
up the handler for the event's kind in `HANDLERS` (a total table: every
event kind has one, and every handler accepts every state), runs it with
a fresh output list, and returns the new TCB with the outputs as a tuple.
Nothing is read from a clock or a random source: ISNs come from the
TCB's ISN generator (`iss_pool`) or the OPEN call, and timers are armed
by `TimerSet` outputs and expire when the caller passes `Timeout` back.
The handlers follow RFC 9293 section 3.10; each one's docstring names
its step, and `# RFC-AMBIGUITY:` marks every reading we had to choose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .arrives import segment_arrives
from .calls import abort_call, close_call, open_call, receive_call, send_call
from .tcb import Tcb
from .timeouts import timeout
from .types import (
    AbortCall,
    CloseCall,
    Event,
    OpenCall,
    Output,
    ReceiveCall,
    SegmentArrives,
    SendCall,
    Timeout,
)

Handler = Callable[[Tcb, Any, list[Output]], Tcb]

HANDLERS: dict[type, Handler] = {
    OpenCall: open_call,
    SendCall: send_call,
    ReceiveCall: receive_call,
    CloseCall: close_call,
    AbortCall: abort_call,
    SegmentArrives: segment_arrives,
    Timeout: timeout,
}


def step(tcb: Tcb, event: Event) -> tuple[Tcb, tuple[Output, ...]]:
    """Apply one event to one endpoint.  Pure: same inputs, same result."""
    handler = HANDLERS.get(type(event))
    if handler is None:
        raise TypeError(f"step: {event!r} is not a synack event")
    out: list[Output] = []
    new = handler(tcb, event, out)
    return new, tuple(out)
