"""RFC 9293 sections 3.10.1-3.10.4 and 3.10.8 in z3: OPEN, SEND, RECEIVE, CLOSE and the
timeouts, one for one with `model/calls.py` and `model/timeouts.py`.

`z3step.Handlers` inherits these; they consult no profile rule (the rules are all read
in `z3step` and `z3tcb`, where the rule-coverage test looks for them).  Every function is
guarded by the path condition `pc`, as in `z3step`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import z3

from synack.harness.prove.z3tcb import (
    BV,
    B,
    Endpoint,
    SymSeg,
    SymTcb,
    bv,
    empty_tcb,
    is_state,
    ite,
    make_seg,
    retry_limit,
    select_seg,
    state_val,
    umin,
)
from synack.model import State, TimerKind
from synack.model.config import Variant
from synack.model.types import Reply

S = State
TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


@dataclass(frozen=True)
class SymEvent:
    """An event of one kind (a Python choice) with symbolic parameters.

    `new_iss` is what the ISN generator produces next (OPEN without an
    ISS, a SYN reaching LISTEN); `length` is the text of a SEND.
    """

    kind: type
    active: bool = False
    remote: bool = False
    timer: TimerKind | None = None
    segment: SymSeg | None = None
    length: BV | None = None
    new_iss: BV | None = None


class CallHandlers(Endpoint):
    # ------------------------------------------------------ calls.py

    def reply(self, pc: B, reply: Reply) -> None:
        self.out.signal(pc, reply)

    def open_call(self, pc: B, t: SymTcb, ev: SymEvent) -> SymTcb:
        closed, listen = is_state(t.state, S.CLOSED), is_state(t.state, S.LISTEN)
        if not ev.active:
            self.reply(z3.And(pc, z3.Not(closed)), Reply.ERROR_ALREADY_EXISTS)
            fresh = replace(
                empty_tcb(S.LISTEN, passive_open=True), remote_specified=z3.BoolVal(ev.remote)
            )
            return ite(z3.And(pc, closed), fresh, t)
        go = z3.And(pc, z3.Or(closed, listen))
        assert ev.new_iss is not None
        new = self.active_open(go, t, ev.new_iss)
        self.reply(z3.And(pc, z3.Not(go)), Reply.ERROR_ALREADY_EXISTS)
        return ite(go, new, t)

    def active_open(self, go: B, t: SymTcb, iss: BV) -> SymTcb:
        """SYN-SENT with ISS `iss`, the SYN emitted and the timer armed (when `go`)."""
        new = replace(
            empty_tcb(S.SYN_SENT),
            iss=iss,
            snd_una=iss,
            snd_nxt=iss + 1,
            snd_buf=t.snd_buf,
            recv_pending=t.recv_pending,
        )
        self.out.emit(go, self.syn_segment(new))
        return self.arm_retransmission(go, new)

    def send_call(self, pc: B, t: SymTcb, length: BV, new_iss: BV) -> SymTcb:
        closed, listen = is_state(t.state, S.CLOSED), is_state(t.state, S.LISTEN)
        self.reply(z3.And(pc, closed), Reply.ERROR_DOES_NOT_EXIST)
        unspecified = z3.And(pc, listen, z3.Not(t.remote_specified))
        self.reply(unspecified, Reply.ERROR_REMOTE_UNSPECIFIED)
        to_active = z3.And(pc, listen, t.remote_specified)
        opened = self.active_open(to_active, t, new_iss)
        opened = replace(opened, snd_buf=opened.snd_buf + length)
        rest = z3.And(pc, z3.Not(closed), z3.Not(listen))
        queueing = is_state(t.state, S.SYN_SENT, S.SYN_RECEIVED, S.ESTABLISHED, S.CLOSE_WAIT)
        bad = z3.Or(t.fin_queued, z3.Not(queueing))
        self.reply(z3.And(rest, bad), Reply.ERROR_CONNECTION_CLOSING)
        go = z3.And(rest, z3.Not(bad))
        t = ite(go, replace(t, snd_buf=t.snd_buf + length), t)
        return ite(to_active, opened, self.transmit(go, t))

    def receive_call(self, pc: B, t: SymTcb) -> SymTcb:
        closed = is_state(t.state, S.CLOSED)
        self.reply(z3.And(pc, closed), Reply.ERROR_DOES_NOT_EXIST)
        rest = z3.And(pc, z3.Not(closed))
        has = z3.And(rest, t.rcv_buf != 0)
        self.out.deliver(has, t.rcv_buf)
        closing = z3.And(
            rest,
            t.rcv_buf == 0,
            is_state(t.state, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT),
        )
        self.reply(closing, Reply.ERROR_CONNECTION_CLOSING)
        pend = z3.And(rest, t.rcv_buf == 0, z3.Not(closing))
        t = ite(has, replace(t, rcv_buf=bv(0), recv_pending=FALSE, eof_queued=FALSE), t)
        t = ite(closing, replace(t, eof_queued=FALSE), t)
        return ite(pend, replace(t, recv_pending=TRUE), t)

    def close_call(self, pc: B, t: SymTcb) -> SymTcb:
        st = t.state
        closed = z3.And(pc, is_state(st, S.CLOSED))
        self.reply(closed, Reply.ERROR_DOES_NOT_EXIST)
        listen = z3.And(pc, is_state(st, S.LISTEN))
        self.reply(z3.And(listen, t.recv_pending), Reply.ERROR_CLOSING)
        t1 = self.delete_tcb(listen, t)
        syn_sent = z3.And(pc, is_state(st, S.SYN_SENT))
        self.reply(z3.And(syn_sent, z3.Or(t.recv_pending, t.snd_buf != 0)), Reply.ERROR_CLOSING)
        t1 = self.delete_tcb(syn_sent, t1)
        rest = z3.And(pc, z3.Not(is_state(st, S.CLOSED, S.LISTEN, S.SYN_SENT)))
        closing = z3.Or(
            t.fin_queued,
            is_state(st, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT),
        )
        self.reply(z3.And(rest, closing), Reply.ERROR_CONNECTION_CLOSING)
        go = z3.And(rest, z3.Not(closing))
        q = replace(t, fin_queued=TRUE)
        sr = z3.And(go, is_state(st, S.SYN_RECEIVED))
        sr_send = z3.And(sr, t.snd_buf == 0)
        others = z3.And(go, z3.Not(is_state(st, S.SYN_RECEIVED)))
        next_state = z3.If(
            is_state(st, S.ESTABLISHED), state_val(S.FIN_WAIT_1), state_val(S.LAST_ACK)
        )
        q2 = ite(sr_send, replace(q, state=state_val(S.FIN_WAIT_1)), replace(q, state=next_state))
        sent = self.transmit(z3.Or(sr_send, others), q2)
        t1 = ite(z3.And(sr, t.snd_buf != 0), q, t1)
        return ite(z3.Or(sr_send, others), sent, t1)

    # --------------------------------------------------- timeouts.py

    def timeout(self, pc: B, t: SymTcb, kind: TimerKind) -> SymTcb:
        pc = z3.And(pc, t.timer(kind))
        if kind is TimerKind.USER:
            self.reply(pc, Reply.ERROR_USER_TIMEOUT)
            return self.delete_tcb(pc, t)
        if kind is TimerKind.TIME_WAIT:
            return self.delete_tcb(pc, t)
        return self.retransmission_timeout(pc, t)

    def retransmission_timeout(self, pc: B, t: SymTcb) -> SymTcb:
        limit = retry_limit(self.cfg, t)
        gives_up = self.cfg.variant is not Variant.NO_GIVE_UP
        give = z3.And(pc, z3.UGE(t.retries, limit), z3.BoolVal(gives_up))
        passive_sr = z3.And(is_state(t.state, S.SYN_RECEIVED), t.passive_open)
        back = z3.And(give, passive_sr)
        self.disarm_all(back, t)
        t1 = self.listening(back, t)
        fail = z3.And(give, z3.Not(passive_sr))
        self.reply(fail, Reply.ERROR_TIMED_OUT)
        t1 = self.delete_tcb(fail, t1)
        go = z3.And(pc, z3.Not(give))
        has, front = self.front_of_queue(t)
        unsent = self.unsent(t)
        stop = z3.And(go, z3.Not(has), unsent == 0)
        t1 = ite(stop, self.disarm_retransmission(stop, t), t1)
        probe = z3.And(go, z3.Not(has), unsent != 0)
        probe_seg = make_seg(
            ack_bit=True, seq=t.snd_nxt, ack=t.rcv_nxt, wnd=self.wnd_field(t), length=bv(1)
        )
        send = z3.And(go, z3.Or(has, unsent != 0))
        seg = select_seg(probe, probe_seg, front)
        self.out.emit(send, seg)
        t2 = ite(probe, replace(t, snd_nxt=t.snd_nxt + 1), t)
        retries = umin(t.retries + 1, limit)
        t2 = self.arm(send, replace(t2, retries=retries), TimerKind.RETRANSMISSION)
        return ite(send, t2, t1)
