"""Ghost state: facts about a run that no endpoint reads, kept for the properties.

A program's `App` record carries, besides its progress, what only an
observer of the whole system knows: which incarnation of the peer its
connection synchronized with, the bytes its send() calls handed to TCP,
whether it still owes the peer a TIME-WAIT, and how many SYN, SYN,ACK
and FIN segments it has sent.  `observe` updates the record after one
step of its endpoint; nothing in model/ outside this file and system.py
looks at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .segment import Flags
from .tcb import Tcb
from .types import (
    AbortCall,
    Deliver,
    Emit,
    Event,
    Output,
    Reply,
    SegmentArrives,
    SendCall,
    Signal,
    State,
    Timeout,
    TimerKind,
)
from .values import cached_hash

SYN_ONLY = Flags.SYN
SYN_ACK = Flags.SYN | Flags.ACK


@cached_hash
@dataclass(frozen=True, slots=True)
class App:
    """A program's progress and the ghost facts about its connection.

    pc, error, received, eof: the program's own view (next op, first error
    seen, bytes read, EOF read).  incarnation: how many times it has opened
    a connection.  sent: bytes its send() calls handed over.  irs_from:
    the peer incarnation whose SYN set our IRS (0: none).  tw_owed: we
    ACKed the peer's FIN after sending ours, so a retransmission of that
    FIN must still be answered until our 2 MSL have run.  syn_tx, synack_tx,
    fin_tx: transmissions of our SYN, of our SYN,ACK for the current IRS,
    and of our FIN while it is outstanding (0 once it is acknowledged;
    saturating, to keep exploration finite).  accepted_by: the peer
    incarnation that accepted this incarnation's SYN (0: none yet).
    """

    pc: int = 0
    error: Reply | None = None
    received: bytes = b""
    eof: bool = False
    incarnation: int = 0
    sent: bytes = b""
    irs_from: int = 0
    tw_owed: bool = False
    syn_tx: int = 0
    synack_tx: int = 0
    fin_tx: int = 0
    accepted_by: int = 0
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def new_incarnation(self) -> App:
        """A fresh connection by the same program: the per-connection facts reset."""
        return replace(
            self,
            incarnation=self.incarnation + 1,
            eof=False,
            irs_from=0,
            tw_owed=False,
            syn_tx=0,
            synack_tx=0,
            fin_tx=0,
            accepted_by=0,
        )


def observe(
    app: App,
    before: Tcb,
    after: Tcb,
    event: Event,
    outputs: tuple[Output, ...],
    sender_incarnation: int,
    cap: int,
) -> App:
    """Update `app` after its endpoint stepped from `before` to `after`."""
    received, error, eof = app.received, app.error, app.eof
    failed = False
    for out in outputs:
        if isinstance(out, Deliver):
            received += out.data
        elif isinstance(out, Signal):
            eof = eof or out.reply is Reply.CONNECTION_CLOSING
            if out.reply.is_error:
                failed = True
                error = error or out.reply
    app = replace(app, received=received, error=error, eof=eof)
    if failed:
        app = replace(app, tw_owed=False)  # a connection that failed owes no TIME-WAIT
    if isinstance(event, SendCall) and not any(isinstance(o, Signal) for o in outputs):
        app = replace(app, sent=app.sent + event.data)
    if isinstance(event, SegmentArrives):
        app = _on_arrival(app, before, after, event, outputs, sender_incarnation)
    if isinstance(event, Timeout) and event.kind is TimerKind.TIME_WAIT:
        app = replace(app, tw_owed=False)
    if isinstance(event, AbortCall):
        app = replace(app, tw_owed=False)
    return count_transmissions(app, after, outputs, cap, answers_syn(before, event))


def _on_arrival(
    app: App,
    before: Tcb,
    after: Tcb,
    event: SegmentArrives,
    outputs: tuple[Output, ...],
    sender_incarnation: int,
) -> App:
    seg = event.segment
    opened = before.state in (State.LISTEN, State.SYN_SENT, State.TIME_WAIT)
    synchronizing = after.state not in (State.CLOSED, State.LISTEN, State.TIME_WAIT)
    if seg.syn and opened and synchronizing and after.irs == seg.seq:
        app = replace(app, irs_from=sender_incarnation, synack_tx=0)
    closing = any(isinstance(o, Signal) and o.reply is Reply.CONNECTION_CLOSING for o in outputs)
    if closing and before.fin_sent:
        app = replace(app, tw_owed=True)
    if seg.rst and after.state is State.CLOSED:
        app = replace(app, tw_owed=False)
    return app


def answers_syn(before: Tcb, event: Event) -> bool:
    """A SYN arriving in SYN-RECEIVED: a SYN,ACK it gets back (the linux profile's
    request socket repeats it) answers the peer's retransmission and is not one of
    ours; R2 bounds what the retransmission timer sends."""
    return (
        isinstance(event, SegmentArrives)
        and event.segment.syn
        and before.state is State.SYN_RECEIVED
    )


def count_transmissions(
    app: App, after: Tcb, outputs: tuple[Output, ...], cap: int, answering: bool = False
) -> App:
    syn_tx, synack_tx, fin_tx = app.syn_tx, app.synack_tx, app.fin_tx
    for out in outputs:
        if not isinstance(out, Emit):
            continue
        flags = out.segment.flags
        if flags == SYN_ONLY:
            syn_tx += 1
        elif flags & SYN_ACK == SYN_ACK and not answering:
            synack_tx += 1
        if Flags.FIN in flags and not out.segment.payload:
            fin_tx += 1  # a FIN riding on text resent ahead of it is not the FIN's own
    # A counter matters only while its segment is outstanding; resetting it
    # afterwards keeps states that differ only in old counts identical.
    if after.state is not State.SYN_SENT:
        syn_tx = 0
    if after.state is State.SYN_SENT or not after.syn_unacked:
        synack_tx = 0
    if not after.fin_sent or after.fin_acked:
        fin_tx = 0
    return replace(
        app, syn_tx=min(syn_tx, cap), synack_tx=min(synack_tx, cap), fin_tx=min(fin_tx, cap)
    )
