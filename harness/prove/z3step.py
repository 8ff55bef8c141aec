"""RFC 9293 section 3.10 in z3: the handlers of `model/`, one for one.

Every function below is guarded: it takes the path condition `pc` and
returns the TCB unchanged (semantically) wherever `pc` is false, so
exclusive branches can be applied one after the other.  A step that may
"drop the segment and return" gives back `(tcb, cont)`: `cont` is the
condition under which processing goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import z3

from synack.harness.prove.z3calls import CallHandlers
from synack.harness.prove.z3calls import SymEvent as SymEvent  # re-exported: z3local, z3pair
from synack.harness.prove.z3seq import acceptable, seq_between, seq_gt, seq_le, seq_lt
from synack.harness.prove.z3tcb import (
    BV,
    RETRY_BITS,
    B,
    Outs,
    SymSeg,
    SymTcb,
    bv,
    empty_tcb,
    is_state,
    ite,
    make_seg,
    outputs_view,
    project_outputs,
    project_tcb,
    seg_to_sym,
    state_val,
    tcb_to_sym,
    tcb_view,
    umax,
    umin,
    value_of,
)
from synack.model import (
    AbortCall,
    CloseCall,
    Config,
    Event,
    OpenCall,
    ReceiveCall,
    SegmentArrives,
    SendCall,
    State,
    Tcb,
    Timeout,
    TimerKind,
)
from synack.model.config import Variant
from synack.model.endpoint import step as model_step
from synack.model.types import Reply

S = State
TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


@dataclass(frozen=True)
class Body:
    """`arrives._Idealized`: the segment trimmed to the window (text as a length)."""

    seq: BV
    length: BV
    fin: B
    urg: B
    syn: B


def select_body(cond: B, a: Body, b: Body) -> Body:
    return Body(
        *[z3.If(cond, getattr(a, n), getattr(b, n)) for n in ("seq", "length", "fin", "urg", "syn")]
    )


@dataclass
class StepResult:
    tcb: SymTcb
    outs: Outs
    domain: B
    """The inputs for which the encoding is exact (see `z3tcb.LOOP_BOUND`)."""


def step(cfg: Config, tcb: SymTcb, event: SymEvent) -> StepResult:
    """`model.step` for one event kind, over a symbolic TCB.

    Raises `z3tcb.UnencodedConfig` for a configuration the encoding does not cover."""
    h = Handlers(cfg)
    kind = event.kind
    if kind is OpenCall:
        new = h.open_call(TRUE, tcb, event)
    elif kind is SendCall:
        assert event.length is not None
        assert event.new_iss is not None
        new = h.send_call(TRUE, tcb, event.length, event.new_iss)
    elif kind is ReceiveCall:
        new = h.receive_call(TRUE, tcb)
    elif kind is CloseCall:
        new = h.close_call(TRUE, tcb)
    elif kind is AbortCall:
        new = h.abort_call(TRUE, tcb)
    elif kind is SegmentArrives:
        assert event.segment is not None and event.new_iss is not None
        new = h.segment_arrives(TRUE, tcb, event.segment, event.new_iss)
    elif kind is Timeout:
        assert event.timer is not None
        new = h.timeout(TRUE, tcb, event.timer)
    else:
        raise TypeError(f"z3 step: {kind!r} is not a synack event kind")
    return StepResult(new, h.out, z3.And(TRUE, *h.domain))


class Handlers(CallHandlers):
    """Every handler: the calls and timeouts of `CallHandlers`, ABORT and SEGMENT ARRIVES."""

    # ------------------------------------------------------ calls.py

    def abort_call(self, pc: B, t: SymTcb) -> SymTcb:
        st = t.state
        self.reply(z3.And(pc, is_state(st, S.CLOSED)), Reply.ERROR_DOES_NOT_EXIST)
        quiet = z3.And(pc, is_state(st, S.CLOSING, S.LAST_ACK, S.TIME_WAIT))
        if self.cfg.rule("abort-unread-resets"):
            unread = z3.And(quiet, z3.Not(is_state(st, S.TIME_WAIT)), t.rcv_buf != 0)
            self.out.emit(unread, self.abort_reset(t))
        self.reply(quiet, Reply.OK)
        t1 = self.delete_tcb(quiet, t)
        rest = z3.And(pc, z3.Not(is_state(st, S.CLOSED, S.CLOSING, S.LAST_ACK, S.TIME_WAIT)))
        self.out.emit(z3.And(rest, z3.Not(is_state(st, S.LISTEN, S.SYN_SENT))), self.abort_reset(t))
        self.reply(z3.And(rest, z3.Or(t.recv_pending, self.unsent(t) != 0)), Reply.CONNECTION_RESET)
        return self.delete_tcb(rest, t1)

    # --------------------------------------------------- arrives.py

    def segment_arrives(self, pc: B, t: SymTcb, seg: SymSeg, new_iss: BV) -> SymTcb:
        st = t.state
        closed = z3.And(pc, is_state(st, S.CLOSED))
        self.out.emit(z3.And(closed, z3.Not(seg.rst)), self.reset_for(seg))
        listen = z3.And(pc, is_state(st, S.LISTEN))
        t1 = self.listen_state(listen, t, seg, new_iss)
        syn_sent = z3.And(pc, is_state(st, S.SYN_SENT))
        t1 = ite(syn_sent, self.syn_sent_state(syn_sent, t, seg), t1)
        other = z3.And(pc, z3.Not(is_state(st, S.CLOSED, S.LISTEN, S.SYN_SENT)))
        return ite(other, self.other_states(other, t, seg), t1)

    def listen_state(self, pc: B, t: SymTcb, seg: SymSeg, iss: BV) -> SymTcb:
        """3.10.7.2: first RST, second ACK, third SYN."""
        rest = z3.And(pc, z3.Not(seg.rst))
        self.out.emit(z3.And(rest, seg.ack_bit), make_seg(rst=True, seq=seg.ack))
        go = z3.And(rest, z3.Not(seg.ack_bit), seg.syn)
        if self.cfg.rule("listen-syn-fin"):
            go = z3.And(go, z3.Not(seg.fin))
        two_way = self.cfg.variant is Variant.TWO_WAY_HANDSHAKE
        new = replace(
            t,
            state=state_val(S.ESTABLISHED if two_way else S.SYN_RECEIVED),
            iss=iss,
            irs=seg.seq,
            rcv_nxt=seg.seq + 1,
            rcv_up=seg.seq + 1,
            snd_una=iss,
            syn_acked=z3.BoolVal(False),
            snd_nxt=iss + 1,
            snd_wnd=seg.wnd,
            max_snd_wnd=seg.wnd,
            snd_wl1=seg.seq,
            snd_wl2=iss,
        )
        self.out.emit(go, self.syn_ack_segment(new))
        return ite(go, self.arm_retransmission(go, new), t)

    def syn_sent_state(self, pc: B, t: SymTcb, seg: SymSeg) -> SymTcb:
        """3.10.7.3 SYN-SENT."""
        unchecked = self.cfg.variant is Variant.UNCHECKED_SYNACK
        if unchecked:
            bad_ack: B = FALSE
            ack_ok: B = seg.ack_bit
        else:
            bad_ack = z3.And(seg.ack_bit, z3.Or(seq_le(seg.ack, t.iss), seq_gt(seg.ack, t.snd_nxt)))
            ack_ok = z3.And(seg.ack_bit, seq_lt(t.snd_una, seg.ack), seq_le(seg.ack, t.snd_nxt))
        self.out.emit(z3.And(pc, bad_ack, z3.Not(seg.rst)), make_seg(rst=True, seq=seg.ack))
        pc = z3.And(pc, z3.Not(bad_ack))
        rst = z3.And(pc, seg.rst, ack_ok)
        refused = self.cfg.rule("syn-sent-refused")
        self.reply(rst, Reply.CONNECTION_REFUSED if refused else Reply.CONNECTION_RESET)
        t_rst = self.delete_tcb(rst, t)
        go = z3.And(pc, z3.Not(seg.rst), seg.syn)
        if unchecked:
            snd_una = z3.If(ack_ok, t.snd_nxt, t.snd_una)
        else:
            snd_una = z3.If(seg.ack_bit, seg.ack, t.snd_una)
        t2 = replace(
            t,
            irs=seg.seq,
            rcv_nxt=seg.seq + 1,
            rcv_up=seg.seq + 1,
            snd_una=snd_una,
            syn_acked=snd_una != t.iss,
            snd_wnd=seg.wnd,
            max_snd_wnd=umax(t.max_snd_wnd, seg.wnd),
            snd_wl1=seg.seq,
            snd_wl2=z3.If(seg.ack_bit, seg.ack, t.iss),
            retries=bv(0, RETRY_BITS),
        )
        est = z3.And(go, seq_gt(t2.snd_una, t2.iss))
        t3 = self.disarm_retransmission(est, replace(t2, state=state_val(S.ESTABLISHED)))
        more = z3.Or(seg.length != 0, seg.fin, seg.urg)
        if self.cfg.rule("synack-no-text"):
            more = FALSE
        plain = z3.And(est, z3.Not(more))
        self.out.emit(plain, self.ack_segment(t3))
        t_plain = self.transmit(plain, t3)
        with_more = z3.And(est, more)
        body = self.trim_to_window(t3, Body(seg.seq + 1, seg.length, seg.fin, seg.urg, FALSE))
        t_more, _ = self.text_and_fin(with_more, t3, seg, body)
        t_more = self.finish(with_more, t_more, TRUE)
        simo = z3.And(go, z3.Not(seq_gt(t2.snd_una, t2.iss)))
        t_sr = replace(t2, state=state_val(S.SYN_RECEIVED))
        self.out.emit(simo, self.syn_ack_segment(t_sr))
        t_sr = self.arm_retransmission(simo, t_sr)
        result = ite(rst, t_rst, t)
        result = ite(plain, t_plain, result)
        result = ite(with_more, t_more, result)
        return ite(simo, t_sr, result)

    # 3.10.7.4

    def other_states(self, pc: B, t: SymTcb, seg: SymSeg) -> SymTcb:
        result = t
        if self.cfg.rule("time-wait-syn"):
            reborn, taken = self.linux_time_wait_syn(pc, t, seg)
            result = ite(taken, reborn, t)
            pc = z3.And(pc, z3.Not(taken))
        if self.cfg.rule("timewait-socket"):
            tw = z3.And(pc, is_state(t.state, S.TIME_WAIT))
            result = ite(tw, self.linux_time_wait(tw, t, seg), result)
            pc = z3.And(pc, z3.Not(tw))
        req: B = FALSE
        if self.cfg.rule("request-socket"):
            req = z3.And(pc, is_state(t.state, S.SYN_RECEIVED), t.passive_open)
            t_req, req_cont, req_body = self.linux_request_sock(req, t, seg)
            result = ite(z3.And(req, z3.Not(req_cont)), t_req, result)
            pc = z3.And(pc, z3.Not(req))
        if self.cfg.rule("flagless-dropped"):
            flagless = z3.Not(z3.Or(seg.ack_bit, seg.rst, seg.syn))
            pc = z3.And(pc, z3.Not(z3.And(z3.Not(is_state(t.state, S.TIME_WAIT)), flagless)))
        cont, body, ack_needed = self.first_check_sequence(pc, t, seg)
        t1, cont = self.second_check_rst(cont, t, seg)
        result = ite(z3.And(pc, z3.Not(cont)), t1, result)
        syn_body = body
        if self.cfg.rule("header-syn"):
            header_syn = z3.And(seg.syn, z3.Not(self.linux_synack_passes(t, seg)))
            syn_body = replace(body, syn=header_syn)
        t2, cont2 = self.fourth_check_syn(cont, t, syn_body)
        result = ite(z3.And(cont, z3.Not(cont2)), t2, result)
        if self.cfg.rule("request-socket"):
            body = select_body(req_cont, req_body, body)
            ack_needed = z3.And(ack_needed, z3.Not(req_cont))
            cont2 = z3.Or(cont2, req_cont)
        t3, cont3 = self.fifth_check_ack(cont2, t, seg)
        result = ite(z3.And(cont2, z3.Not(cont3)), t3, result)
        t4, ack_more = self.text_and_fin(cont3, t3, seg, body)
        t4 = self.finish(cont3, t4, z3.Or(ack_needed, ack_more))
        return ite(cont3, t4, result)

    def finish(self, pc: B, t: SymTcb, ack_needed: B) -> SymTcb:
        pc = z3.And(pc, z3.Not(is_state(t.state, S.CLOSED)))
        before = len(self.out.items)
        t = self.transmit(pc, t)
        carried = z3.Or(FALSE, *[g for g, _ in self.out.emitted(before)])
        self.out.emit(z3.And(pc, ack_needed, z3.Not(carried)), self.ack_segment(t))
        return t

    def linux_time_wait_syn(self, pc: B, t: SymTcb, seg: SymSeg) -> tuple[SymTcb, B]:
        taken = z3.And(
            pc,
            is_state(t.state, S.TIME_WAIT),
            seg.syn,
            z3.Not(seg.rst),
            z3.Not(seg.ack_bit),
            seq_gt(seg.seq, t.rcv_nxt),
        )
        listener = t.passive_open if self.cfg.listener_kept else FALSE
        self.out.emit(z3.And(taken, z3.Not(listener)), self.ack_segment(t))
        reborn = z3.And(taken, listener)
        raw = t.snd_nxt + 65537
        iss = z3.If(raw == 0, bv(1), raw)
        self.disarm_all(reborn, t)
        listener = replace(
            empty_tcb(S.LISTEN, passive_open=True), remote_specified=t.remote_specified
        )
        return ite(reborn, self.listen_state(reborn, listener, seg, iss), t), taken

    def linux_time_wait(self, pc: B, t: SymTcb, seg: SymSeg) -> SymTcb:
        """`arrives._linux_time_wait` (tcp_timewait_state_process())."""
        bare = z3.And(seg.seq == t.rcv_nxt, z3.Or(seg.seg_len == 0, seg.rst))
        kill = z3.And(pc, bare, seg.rst)
        t_kill = self.delete_tcb(kill, t)
        quiet = z3.And(pc, bare, z3.Not(seg.rst))
        other = z3.And(pc, z3.Not(bare), z3.Not(seg.rst))
        self.out.emit(other, self.ack_segment(t))
        rearm = z3.Or(quiet, z3.And(other, seg.ack_bit))
        t_rearm = self.arm(rearm, t, TimerKind.TIME_WAIT)
        return ite(kill, t_kill, ite(rearm, t_rearm, t))

    def linux_request_sock(self, pc: B, t: SymTcb, seg: SymSeg) -> tuple[SymTcb, B, Body]:
        """`arrives._linux_request_sock`: returns (tcb, continue at the fifth step, body)."""
        in_win = self.linux_in_window(t, seg)
        again = z3.And(pc, seg.syn, seg.seq == t.irs, z3.Not(seg.rst), z3.Not(seg.ack_bit))
        if not self.cfg.rule("retransmitted-syn"):
            again = FALSE
        self.out.emit(again, self.syn_ack_segment(t))
        t_again = self.arm(again, t, TimerKind.RETRANSMISSION)
        pc = z3.And(pc, z3.Not(again))
        rst = z3.And(pc, seg.rst)
        back = z3.And(rst, seg.seq == t.rcv_nxt)
        self.out.emit(z3.And(rst, seg.seq != t.rcv_nxt, in_win), self.ack_segment(t))
        pc = z3.And(pc, z3.Not(seg.rst))
        bad_ack = z3.And(pc, seg.ack_bit, seg.ack != t.iss + 1)
        self.out.emit(bad_ack, make_seg(rst=True, seq=seg.ack))
        pc = z3.And(pc, z3.Not(bad_ack))
        self.out.emit(z3.And(pc, z3.Not(in_win)), self.ack_segment(t))
        pc = z3.And(pc, in_win)
        syn_drop = z3.And(pc, seg.syn, seg.seq != t.irs)
        self.out.emit(syn_drop, self.reset_for(seg))
        drop_req = z3.Or(back, syn_drop)
        self.disarm_all(drop_req, t)
        t1 = self.listening(drop_req, t)
        pc = z3.And(pc, z3.Not(syn_drop), seg.ack_bit)
        child = z3.And(pc, seg.syn)
        self.out.emit(child, self.ack_segment(t))
        t_child = replace(
            t,
            passive_open=FALSE,
            snd_una=t.iss + 1,
            syn_acked=TRUE,
            retries=bv(0, RETRY_BITS),
        )
        t_child = self.disarm_retransmission(child, t_child)
        cont = z3.And(pc, z3.Not(seg.syn))
        t1 = ite(again, t_again, ite(child, t_child, t1))
        body = Body(seg.seq, seg.length, seg.fin, seg.urg, FALSE)
        front = seq_lt(body.seq, t.rcv_nxt)
        body = select_body(front, trim_front(body, t.rcv_nxt - body.seq), body)
        return t1, cont, self.trim_to_window(t, body)

    def linux_in_window(self, t: SymTcb, seg: SymSeg) -> B:
        """`arrives._linux_in_window` (Linux tcp_in_window())."""
        start, end = t.rcv_nxt, t.rcv_nxt + self.rcv_wnd(t)
        last = seg.seq + seg.seg_len
        return z3.Or(
            seg.seq == start,
            z3.And(seq_gt(last, start), seq_lt(seg.seq, end)),
            z3.And(seg.seq == end, last == end),
        )

    def first_check_sequence(self, pc: B, t: SymTcb, seg: SymSeg) -> tuple[B, Body, B]:
        wnd = self.rcv_wnd(t)
        table6 = acceptable(t.rcv_nxt, wnd, seg.seq, seg.seg_len)
        linux_test: B = FALSE
        if self.cfg.rule("tcp-sequence"):
            linux_test = z3.Not(is_state(t.state, S.TIME_WAIT))
            right, end = t.rcv_nxt + wnd, seg.seq + seg.seg_len
            queue_empty = z3.And(t.rcv_buf == 0, z3.Not(t.eof_queued))
            if not self.cfg.rule("tcp-sequence-queue"):
                queue_empty = TRUE
            tcp_sequence = z3.And(
                seq_le(seg.seq, right),
                seq_le(t.rcv_nxt, end),
                z3.Or(queue_empty, seq_le(end - z3.If(seg.fin, bv(1), bv(0)), right)),
            )
            table6 = z3.If(linux_test, tcp_sequence, table6)
        accept = z3.Or(
            self.simultaneous_open_synack(t, seg), self.linux_reset_at_fin(t, seg), table6
        )
        rejected = z3.And(pc, z3.Not(accept))
        allowance = z3.And(rejected, wnd == 0, seg.seq == t.rcv_nxt)
        answered = z3.And(rejected, z3.Not(allowance), z3.Not(seg.rst))
        self.out.emit(answered, self.ack_segment(t))
        self.arm(z3.And(answered, is_state(t.state, S.TIME_WAIT), seg.fin), t, TimerKind.TIME_WAIT)
        # arm() returns the TCB with the timer on; it is already on in TIME-WAIT.
        body = Body(seg.seq, seg.length, seg.fin, seg.urg, seg.syn)
        front = z3.And(z3.Not(allowance), seq_lt(body.seq, t.rcv_nxt))
        body = select_body(front, trim_front(body, t.rcv_nxt - body.seq), body)
        body = self.trim_to_window(t, body)
        zero = Body(seg.seq, bv(0), FALSE, seg.urg, FALSE)
        lost = z3.And(
            linux_test,
            z3.Not(self.linux_fin_received_ignores(t, seg)),
            z3.Or(seg.length != 0, seg.fin),
            body.length == 0,
            z3.Not(body.fin),
        )
        body = select_body(allowance, zero, body)
        cont = z3.Or(allowance, z3.And(pc, accept))
        owed = z3.Or(allowance, z3.And(z3.Not(allowance), lost))
        if self.cfg.rule("simultaneous-synack"):
            owed = z3.Or(owed, self.linux_synack_passes(t, seg))
        return cont, body, owed

    def linux_synack_passes(self, t: SymTcb, seg: SymSeg) -> B:
        """`arrives._linux_synack_passes`."""
        return z3.And(self.simultaneous_open_synack(t, seg), seg.seg_len == 1, seg.ack == t.snd_nxt)

    def simultaneous_open_synack(self, t: SymTcb, seg: SymSeg) -> B:
        return z3.And(
            is_state(t.state, S.SYN_RECEIVED),
            seg.syn,
            seg.ack_bit,
            z3.Not(seg.rst),
            seg.seq + 1 == t.rcv_nxt,
        )

    def trim_to_window(self, t: SymTcb, body: Body) -> Body:
        end = t.rcv_nxt + self.rcv_wnd(t)
        room = z3.If(seq_between(t.rcv_nxt, body.seq, end), end - body.seq, bv(0))
        too_long = z3.UGT(body.length, room)
        syn = z3.If(body.syn, bv(1), bv(0))
        fin_out = z3.Or(too_long, z3.And(body.fin, z3.UGE(body.length + syn, room)))
        return replace(
            body,
            length=z3.If(too_long, room, body.length),
            fin=z3.And(body.fin, z3.Not(fin_out)),
        )

    def second_check_rst(self, pc: B, t: SymTcb, seg: SymSeg) -> tuple[SymTcb, B]:
        r = z3.And(pc, seg.rst)
        st = t.state
        if self.cfg.rule("time-wait-rst-ignored"):
            r = z3.And(r, z3.Not(is_state(st, S.TIME_WAIT)))
        if self.cfg.rule("rst-challenge"):
            resets = z3.Or(seg.seq == t.rcv_nxt, self.linux_reset_at_fin(t, seg))
            self.out.emit(z3.And(r, z3.Not(resets)), self.ack_segment(t))
            r = z3.And(r, resets)
        sr = is_state(st, S.SYN_RECEIVED)
        back = z3.And(r, sr, t.passive_open)
        self.disarm_all(back, t)
        t1 = self.listening(back, t)
        refused = z3.And(r, sr, z3.Not(t.passive_open))
        self.reply(refused, Reply.CONNECTION_REFUSED)
        reset = z3.And(r, is_state(st, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT))
        self.reply(reset, Reply.CONNECTION_RESET)
        t1 = self.delete_tcb(z3.And(r, z3.Not(back)), t1)
        return t1, z3.And(pc, z3.Not(seg.rst))

    def fourth_check_syn(self, pc: B, t: SymTcb, body: Body) -> tuple[SymTcb, B]:
        s = z3.And(pc, body.syn)
        back = z3.And(s, is_state(t.state, S.SYN_RECEIVED), t.passive_open)
        self.disarm_all(back, t)
        t1 = self.listening(back, t)
        rest = z3.And(s, z3.Not(back))
        if self.cfg.rule("syn-challenge"):
            self.out.emit(rest, self.ack_segment(t))
        else:
            self.out.emit(rest, make_seg(rst=True, seq=t.snd_nxt))
            self.reply(rest, Reply.CONNECTION_RESET)
            t1 = self.delete_tcb(rest, t1)
        return t1, z3.And(pc, z3.Not(body.syn))

    def fifth_check_ack(self, pc: B, t: SymTcb, seg: SymSeg) -> tuple[SymTcb, B]:
        pc = z3.And(pc, seg.ack_bit)
        sr = z3.And(pc, is_state(t.state, S.SYN_RECEIVED))
        acked = seq_lt(t.snd_una, seg.ack)
        if self.cfg.rule("simultaneous-ack-of-nothing"):
            acked = z3.If(t.passive_open, acked, seq_le(t.snd_una, seg.ack))
        sr_ok = z3.And(acked, seq_le(seg.ack, t.snd_nxt))
        self.out.emit(z3.And(sr, z3.Not(sr_ok)), make_seg(rst=True, seq=seg.ack))
        next_state = z3.If(
            z3.Or(t.fin_sent, t.fin_queued), state_val(S.FIN_WAIT_1), state_val(S.ESTABLISHED)
        )
        synced = replace(
            t,
            state=next_state,
            snd_wnd=seg.wnd,
            max_snd_wnd=umax(t.max_snd_wnd, seg.wnd),
            snd_wl1=seg.seq,
            snd_wl2=seg.ack,
        )
        go = z3.And(pc, z3.Or(z3.Not(sr), sr_ok))
        if self.cfg.rule("old-ack-challenge"):
            ours = t.snd_una - t.iss - z3.If(t.passive_open, bv(1), bv(0))
            allowance = z3.If(z3.ULE(t.max_snd_wnd, ours), t.max_snd_wnd, ours)
            in_range = z3.And(seq_le(t.snd_una - allowance, seg.ack), seq_le(seg.ack, t.snd_nxt))
            challenge = z3.And(pc, z3.Not(sr), z3.Not(in_range))
            if self.cfg.rule("header-prediction") and self.cfg.header_prediction:
                fast = z3.And(
                    is_state(t.state, S.ESTABLISHED),
                    z3.Not(z3.Or(seg.syn, seg.fin, seg.rst, seg.urg)),
                    seg.seq == t.rcv_nxt,
                    seg.length != 0,
                    seq_le(seg.ack, t.snd_nxt),
                    seg.wnd == t.snd_wnd,
                )
                challenge = z3.And(challenge, z3.Not(fast))
            self.out.emit(challenge, self.ack_segment(t))
            go = z3.And(go, z3.Not(challenge))
        t1 = ite(z3.And(sr, sr_ok), synced, t)
        t1, dropped = self.established_ack(go, t1, seg)
        go2 = z3.And(go, z3.Not(dropped))
        t1, stop = self.ack_per_state(go2, t1)
        return t1, z3.And(go2, z3.Not(stop))

    def established_ack(self, pc: B, t: SymTcb, seg: SymSeg) -> tuple[SymTcb, B]:
        ack = seg.ack
        advance = z3.And(pc, seq_lt(t.snd_una, ack), seq_le(ack, t.snd_nxt))
        t = self.advance_snd_una(advance, t, ack)
        too_new = z3.And(pc, z3.Not(advance), seq_gt(ack, t.snd_nxt))
        self.out.emit(too_new, self.ack_segment(t))
        update = z3.And(
            pc,
            z3.Not(too_new),
            seq_le(t.snd_una, ack),
            seq_le(ack, t.snd_nxt),
            z3.Or(
                seq_lt(t.snd_wl1, seg.seq),
                z3.And(t.snd_wl1 == seg.seq, seq_le(t.snd_wl2, ack)),
            ),
        )
        updated = replace(
            t,
            snd_wnd=seg.wnd,
            snd_wl1=seg.seq,
            snd_wl2=ack,
            max_snd_wnd=umax(t.max_snd_wnd, seg.wnd),
        )
        return ite(update, updated, t), too_new

    def advance_snd_una(self, pc: B, t: SymTcb, ack: BV) -> SymTcb:
        newly = ack - t.snd_una - z3.If(self.syn_unacked(t), bv(1), bv(0))
        text_acked = umin(newly, self.in_flight(t))
        buf = z3.If(z3.ULE(text_acked, t.snd_buf), t.snd_buf - text_acked, bv(0))
        t1 = replace(
            t, snd_una=ack, syn_acked=z3.BoolVal(True), snd_buf=buf, retries=bv(0, RETRY_BITS)
        )
        idle = z3.And(pc, t1.snd_una == t1.snd_nxt, self.unsent(t1) == 0)
        t_idle = self.disarm_retransmission(idle, t1)
        busy = z3.And(pc, z3.Not(idle))
        t_busy = self.arm(busy, t1, TimerKind.RETRANSMISSION)
        return ite(idle, t_idle, ite(busy, t_busy, t))

    def fin_counts_as_acked(self, t: SymTcb) -> B:
        if self.cfg.variant is Variant.EARLY_CLOSE:
            return t.fin_sent
        return self.fin_acked(t)

    def ack_per_state(self, pc: B, t: SymTcb) -> tuple[SymTcb, B]:
        st = t.state
        counts = self.fin_counts_as_acked(t)
        fw1 = z3.And(pc, is_state(st, S.FIN_WAIT_1), counts)
        t_fw2 = self.disarm_retransmission(fw1, replace(t, state=state_val(S.FIN_WAIT_2)))
        self.reply(fw1, Reply.OK)
        closing = z3.And(pc, is_state(st, S.CLOSING))
        t_tw = self.enter_time_wait(z3.And(closing, counts), t, FALSE)
        last = z3.And(pc, is_state(st, S.LAST_ACK), counts)
        t_del = self.delete_tcb(last, t)
        result = ite(fw1, t_fw2, ite(z3.And(closing, counts), t_tw, ite(last, t_del, t)))
        goes_on = self.cfg.rule("closing-text-step")
        stop = z3.Or(z3.And(closing, counts), last) if goes_on else z3.Or(closing, last)
        return result, stop

    def enter_time_wait(self, pc: B, t: SymTcb, fin_to_ack: B) -> SymTcb:
        if self.cfg.variant is Variant.NO_TIME_WAIT:
            self.out.emit(z3.And(pc, fin_to_ack), self.ack_segment(t))
            return self.delete_tcb(pc, t)
        t1 = self.disarm_all(pc, replace(t, state=state_val(S.TIME_WAIT), eof_queued=FALSE))
        return ite(pc, self.arm(pc, t1, TimerKind.TIME_WAIT), t)

    def text_and_fin(self, pc: B, t: SymTcb, seg: SymSeg, body: Body) -> tuple[SymTcb, B]:
        st = t.state
        receiving = is_state(st, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2)
        reading = t.recv_pending
        up = seg.seq + seg.up
        urgent = z3.And(pc, body.urg, receiving, seq_gt(up, t.rcv_up))
        t = ite(urgent, replace(t, rcv_up=up), t)
        self.reply(urgent, Reply.URGENT)
        reset: B = FALSE
        t_reset = t
        pc = z3.And(pc, z3.Not(self.linux_fin_received_ignores(t, seg)))
        if self.cfg.rule("data-after-fin-resets"):
            reset = z3.And(
                pc,
                is_state(st, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK),
                seq_gt(seg.seq + seg.length, t.rcv_nxt),
            )
            self.out.emit(reset, self.reset_for(seg))
            self.reply(reset, Reply.CONNECTION_RESET)
            t_reset = self.delete_tcb(reset, t)
            pc = z3.And(pc, z3.Not(reset))
        gap = z3.And(pc, body.seq != t.rcv_nxt)
        ack_gap = z3.And(gap, z3.Or(body.length != 0, body.fin))
        at = z3.And(pc, body.seq == t.rcv_nxt)
        text = body.length != 0
        if self.cfg.variant is Variant.NO_HALF_CLOSE:
            discard = z3.And(at, text, is_state(st, S.FIN_WAIT_2))
        else:
            discard = FALSE
        t_discard = replace(t, rcv_nxt=t.rcv_nxt + body.length)
        queue = z3.And(at, text, receiving, z3.Not(discard))
        t_queue = replace(t, rcv_buf=t.rcv_buf + body.length, rcv_nxt=t.rcv_nxt + body.length)
        hand = z3.And(queue, t.recv_pending)
        self.out.deliver(hand, t_queue.rcv_buf)
        t_queue = ite(hand, replace(t_queue, rcv_buf=bv(0), recv_pending=FALSE), t_queue)
        ignored = z3.And(at, text, z3.Not(receiving))
        t1 = ite(discard, t_discard, ite(queue, t_queue, t))
        fin = z3.And(at, z3.Not(ignored), body.fin)
        t1 = self.eighth_check_fin(fin, t1, reading)
        ack_more = z3.Or(ack_gap, discard, queue, fin)
        return ite(reset, t_reset, t1), ack_more

    def linux_reset_at_fin(self, t: SymTcb, seg: SymSeg) -> B:
        """`arrives._linux_reset_at_fin` (Linux tcp_reset_check())."""
        if not self.cfg.rule("reset-at-fin"):
            return FALSE
        return z3.And(
            seg.rst,
            is_state(t.state, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK),
            seg.seq == t.rcv_nxt - 1,
        )

    def linux_fin_received_ignores(self, t: SymTcb, seg: SymSeg) -> B:
        """`arrives._linux_fin_received_ignores`."""
        if not self.cfg.rule("fin-received-ignores"):
            return FALSE
        return z3.And(
            is_state(t.state, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK), seq_le(t.rcv_nxt, seg.seq)
        )

    def eighth_check_fin(self, pc: B, t: SymTcb, eof_read: B) -> SymTcb:
        self.reply(pc, Reply.CONNECTION_CLOSING)
        queued = z3.Not(eof_read) if self.cfg.rule("tcp-sequence-queue") else FALSE
        t = ite(pc, replace(t, rcv_nxt=t.rcv_nxt + 1, recv_pending=FALSE, eof_queued=queued), t)
        st = t.state
        wait = z3.And(pc, is_state(st, S.SYN_RECEIVED, S.ESTABLISHED))
        t_wait = replace(t, state=state_val(S.CLOSE_WAIT))
        fw1 = z3.And(pc, is_state(st, S.FIN_WAIT_1))
        to_tw = z3.Or(z3.And(fw1, self.fin_acked(t)), z3.And(pc, is_state(st, S.FIN_WAIT_2)))
        t_tw = self.enter_time_wait(to_tw, t, TRUE)
        closing = z3.And(fw1, z3.Not(self.fin_acked(t)))
        t_closing = replace(t, state=state_val(S.CLOSING))
        tw = z3.And(pc, is_state(st, S.TIME_WAIT))
        t_rearm = self.arm(tw, t, TimerKind.TIME_WAIT)
        return ite(wait, t_wait, ite(to_tw, t_tw, ite(closing, t_closing, ite(tw, t_rearm, t))))


def trim_front(body: Body, skip: BV) -> Body:
    drop_syn = z3.And(body.syn, skip != 0)
    seq = z3.If(drop_syn, body.seq + 1, body.seq)
    skip = z3.If(drop_syn, skip - 1, skip)
    cut = umin(skip, body.length)
    return Body(
        seq + cut, body.length - cut, body.fin, body.urg, z3.And(body.syn, z3.Not(drop_syn))
    )


def event_to_sym(tcb: Tcb, event: Event) -> SymEvent:
    """A concrete event in the encoding's terms (the ISN generator's next value included)."""
    new_iss = bv(tcb.take_iss()[0])
    if isinstance(event, OpenCall):
        iss = new_iss if event.iss is None else bv(event.iss)
        return SymEvent(OpenCall, active=event.active, remote=event.remote, new_iss=iss)
    if isinstance(event, SendCall):
        return SymEvent(SendCall, length=bv(len(event.data)), new_iss=new_iss)
    if isinstance(event, SegmentArrives):
        return SymEvent(SegmentArrives, segment=seg_to_sym(event.segment), new_iss=new_iss)
    if isinstance(event, Timeout):
        return SymEvent(Timeout, timer=event.kind)
    return SymEvent(type(event))


def evaluate_concrete(
    tcb: Tcb, event: Event
) -> tuple[dict[str, object], list[tuple[object, ...]], bool]:
    """Run the encoding on concrete values: (TCB, outputs, inside the domain)."""
    result = step(tcb.cfg, tcb_to_sym(tcb), event_to_sym(tcb, event))
    return (
        tcb_view(result.tcb, z3.simplify),
        outputs_view(result.outs, z3.simplify),
        bool(value_of(result.domain, z3.simplify)),
    )


OUTSIDE_DOMAIN = "outside the encoding's domain (transmit loop bound)"


def disagreement(tcb: Tcb, event: Event) -> str | None:
    """None if the encoding computes exactly `model.step`'s successor, else how not."""
    after, outputs = model_step(tcb, event)
    sym_tcb, sym_outs, inside = evaluate_concrete(tcb, event)
    if not inside:
        return OUTSIDE_DOMAIN
    expected_tcb, expected_outs = project_tcb(after), project_outputs(outputs)
    diffs = [
        f"{name}: model {expected_tcb[name]!r}, z3 {sym_tcb[name]!r}"
        for name in expected_tcb
        if expected_tcb[name] != sym_tcb[name]
    ]
    if expected_outs != sym_outs:
        diffs.append(f"outputs: model {expected_outs}, z3 {sym_outs}")
    return "; ".join(diffs) or None
