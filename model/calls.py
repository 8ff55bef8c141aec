"""User calls: OPEN, SEND, RECEIVE, CLOSE, ABORT (RFC 9293 sections 3.10.1-3.10.5).

STATUS (3.10.6) changes nothing and is the TCB itself: read `tcb.state`.
"""

from __future__ import annotations

from dataclasses import replace

from .sending import (
    abort_reset,
    arm_retransmission,
    delete_tcb,
    emit,
    syn_segment,
    transmit,
)
from .seq import seq_add
from .tcb import Tcb, listening
from .types import (
    AbortCall,
    CloseCall,
    Deliver,
    OpenCall,
    Output,
    ReceiveCall,
    Reply,
    SendCall,
    Signal,
    State,
)

S = State


def _reply(out: list[Output], reply: Reply) -> None:
    out.append(Signal(reply))


def open_call(tcb: Tcb, call: OpenCall, out: list[Output]) -> Tcb:
    """3.10.1 OPEN Call."""
    if tcb.state is S.CLOSED and not call.active:
        return replace(listening(tcb), remote_specified=call.remote)
    if tcb.state in (S.CLOSED, S.LISTEN) and call.active:
        # CLOSED: create the TCB; LISTEN: "change the connection from passive to active".
        if call.iss is None:
            iss, pool = tcb.take_iss()
        else:
            iss, pool = call.iss, tcb.iss_pool
        tcb = Tcb(
            state=S.SYN_SENT,
            cfg=tcb.cfg,
            iss_pool=pool,
            iss=iss,
            snd_una=iss,
            syn_acked=False,
            snd_nxt=seq_add(iss, 1),
            snd_buf=tcb.snd_buf,
            recv_pending=tcb.recv_pending,
        )
        emit(out, syn_segment(tcb))
        return arm_retransmission(tcb, out)
    _reply(out, Reply.ERROR_ALREADY_EXISTS)
    return tcb


def send_call(tcb: Tcb, call: SendCall, out: list[Output]) -> Tcb:
    """3.10.2 SEND Call."""
    state = tcb.state
    if state is S.CLOSED:
        _reply(out, Reply.ERROR_DOES_NOT_EXIST)
        return tcb
    if state is S.LISTEN:
        if not tcb.remote_specified:
            _reply(out, Reply.ERROR_REMOTE_UNSPECIFIED)
            return tcb
        # "change the connection from passive to active, select an ISS.  Send a
        # SYN segment"; the text is queued until ESTABLISHED.
        tcb = open_call(tcb, OpenCall(active=True), out)
        return replace(tcb, snd_buf=tcb.snd_buf + call.data)
    if tcb.fin_queued or state not in (
        S.SYN_SENT,
        S.SYN_RECEIVED,
        S.ESTABLISHED,
        S.CLOSE_WAIT,
    ):
        _reply(out, Reply.ERROR_CONNECTION_CLOSING)
        return tcb
    tcb = replace(tcb, snd_buf=tcb.snd_buf + call.data)
    # SYN-SENT, SYN-RECEIVED: queued until ESTABLISHED; transmit() sends nothing there.
    return transmit(tcb, out)


def receive_call(tcb: Tcb, call: ReceiveCall, out: list[Output]) -> Tcb:
    """3.10.3 RECEIVE Call."""
    state = tcb.state
    if state is S.CLOSED:
        _reply(out, Reply.ERROR_DOES_NOT_EXIST)
        return tcb
    if tcb.rcv_buf:
        # RFC-AMBIGUITY: in CLOSING, LAST-ACK and TIME-WAIT the RFC answers
        # "error: connection closing" unconditionally; text accepted (and ACKed)
        # but not yet handed over would then be lost.  We deliver it first, as
        # CLOSE-WAIT does, and answer the error only when nothing is left.
        # (A read that empties the queue also reads a FIN queued behind the text.)
        out.append(Deliver(tcb.rcv_buf))
        return replace(tcb, rcv_buf=b"", recv_pending=False, eof_queued=False)
    if state in (S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT):
        _reply(out, Reply.ERROR_CONNECTION_CLOSING)
        return replace(tcb, eof_queued=False)
    return replace(tcb, recv_pending=True)


def close_call(tcb: Tcb, call: CloseCall, out: list[Output]) -> Tcb:
    """3.10.4 CLOSE Call."""
    state = tcb.state
    if state is S.CLOSED:
        _reply(out, Reply.ERROR_DOES_NOT_EXIST)
        return tcb
    if state is S.LISTEN:
        if tcb.recv_pending:
            _reply(out, Reply.ERROR_CLOSING)
        return delete_tcb(tcb, out)
    if state is S.SYN_SENT:
        if tcb.recv_pending or tcb.snd_buf:
            _reply(out, Reply.ERROR_CLOSING)
        return delete_tcb(tcb, out)
    if tcb.fin_queued or state in (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT):
        _reply(out, Reply.ERROR_CONNECTION_CLOSING)
        return tcb
    tcb = replace(tcb, fin_queued=True)
    if state is S.SYN_RECEIVED:
        if tcb.snd_buf:
            return tcb  # queued until ESTABLISHED
        tcb = replace(tcb, state=S.FIN_WAIT_1)
        return transmit(tcb, out)
    next_state = S.FIN_WAIT_1 if state is S.ESTABLISHED else S.LAST_ACK
    return transmit(replace(tcb, state=next_state), out)


def abort_call(tcb: Tcb, call: AbortCall, out: list[Output]) -> Tcb:
    """3.10.5 ABORT Call."""
    state = tcb.state
    if state is S.CLOSED:
        _reply(out, Reply.ERROR_DOES_NOT_EXIST)
        return tcb
    if state in (S.CLOSING, S.LAST_ACK, S.TIME_WAIT):
        if tcb.cfg.rule("abort-unread-resets") and tcb.rcv_buf and state is not S.TIME_WAIT:
            # Linux tcp_close(): closing with unread data resets (RFC 2525 2.17).
            emit(out, abort_reset(tcb))
        _reply(out, Reply.OK)
        return delete_tcb(tcb, out)
    if state not in (S.LISTEN, S.SYN_SENT):
        emit(out, abort_reset(tcb))
    if tcb.recv_pending or tcb.unsent:
        _reply(out, Reply.CONNECTION_RESET)
    return delete_tcb(tcb, out)
