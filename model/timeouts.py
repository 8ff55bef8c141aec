"""Timeouts (RFC 9293 section 3.10.8) and the give-up rule of section 3.8.3."""

from __future__ import annotations

from dataclasses import replace

from .config import Variant
from .segment import Flags, Segment
from .sending import arm, delete_tcb, disarm_retransmission, emit, front_of_queue
from .seq import seq_add
from .tcb import Tcb, listening
from .types import Output, Reply, Signal, State, Timeout, TimerKind

S = State


def timeout(tcb: Tcb, event: Timeout, out: list[Output]) -> Tcb:
    """Dispatch a timer expiry.  A timer that is not armed cannot expire: no-op."""
    if event.kind not in tcb.timers:
        return tcb
    if event.kind is TimerKind.USER:
        return user_timeout(tcb, out)
    if event.kind is TimerKind.TIME_WAIT:
        return time_wait_timeout(tcb, out)
    return retransmission_timeout(tcb, out)


def user_timeout(tcb: Tcb, out: list[Output]) -> Tcb:
    """USER TIMEOUT: flush, signal the user, delete the TCB."""
    out.append(Signal(Reply.ERROR_USER_TIMEOUT))
    return delete_tcb(tcb, out)


def time_wait_timeout(tcb: Tcb, out: list[Output]) -> Tcb:
    """TIME-WAIT TIMEOUT: delete the TCB, enter CLOSED."""
    return delete_tcb(tcb, out)


def retry_limit(tcb: Tcb) -> int:
    """Retransmissions allowed for the segment at the front of the queue."""
    if tcb.state is S.SYN_SENT:
        return tcb.cfg.syn_retries
    if tcb.syn_unacked:
        return tcb.cfg.synack_retries
    return tcb.cfg.retries


def retransmission_timeout(tcb: Tcb, out: list[Output]) -> Tcb:
    """RETRANSMISSION TIMEOUT: resend the front of the queue, or give up.

    After `retry_limit` retransmissions the connection is given up (3.8.3,
    threshold R2): the user is told "connection timed out" and the TCB is
    deleted.  With nothing in flight but text behind a zero window, the
    expiry sends a one-octet zero-window probe (3.8.6.1, MUST-36).
    """
    limit = retry_limit(tcb)
    gives_up = tcb.cfg.variant is not Variant.NO_GIVE_UP  # the broken design never does
    if tcb.retries >= limit and gives_up:
        if tcb.state is S.SYN_RECEIVED and tcb.passive_open:
            # RFC-AMBIGUITY: give-up of a passively opened SYN-RECEIVED is not
            # described; as Linux drops the request socket, the half-open
            # connection is forgotten and the endpoint listens again, silently.
            delete_tcb(tcb, out)
            return listening(tcb)
        out.append(Signal(Reply.ERROR_TIMED_OUT))
        return delete_tcb(tcb, out)
    segment = front_of_queue(tcb)
    if segment is None:
        unsent = tcb.unsent
        if not unsent:
            return disarm_retransmission(tcb, out)
        segment = Segment(Flags.ACK, tcb.snd_nxt, tcb.rcv_nxt, tcb.wnd_field, unsent[:1])
        tcb = replace(tcb, snd_nxt=seq_add(tcb.snd_nxt, 1))
    emit(out, segment)
    retries = min(tcb.retries + 1, limit)  # saturates: only no-give-up ever reaches it
    return arm(replace(tcb, retries=retries), TimerKind.RETRANSMISSION, out)
