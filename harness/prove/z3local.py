"""One endpoint against an arbitrary network: the system of the local proofs.

The endpoint runs `z3step.step`; the application may make any call at any
time, every armed timer may expire at any time, and every arriving
segment is arbitrary (any flags, any 32-bit SEQ and ACK, any window and
length the header can carry).  A network that loses, duplicates and
reorders what a real peer sent delivers a subset of these, so whatever
holds here holds under that network too, and also against forged or
stale segments.

Ghost counters follow `model/ghost.py`: SYN, SYN,ACK and FIN
transmissions while that segment is outstanding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import z3

from synack.harness.prove.z3seq import seq_ge
from synack.harness.prove.z3step import StepResult, SymEvent, step
from synack.harness.prove.z3tcb import (
    BV,
    RETRY_BITS,
    B,
    Endpoint,
    OutKind,
    SymSeg,
    SymTcb,
    bv,
    empty_tcb,
    fresh_seg,
    fresh_tcb,
    is_state,
)
from synack.model import (
    AbortCall,
    CloseCall,
    Config,
    OpenCall,
    ReceiveCall,
    SegmentArrives,
    SendCall,
    State,
    Timeout,
    TimerKind,
)
from synack.model.types import SYNCHRONIZED, Reply

S = State
SEND_LIMIT = 8
"""The application keeps at most this much text queued (2 MSS of the proofs'
configuration), so `transmit` stays inside the encoding's loop bound."""

ERRORS = tuple(r for r in Reply if r.is_error)


@dataclass(frozen=True)
class LocalState:
    tcb: SymTcb
    syn_tx: BV
    synack_tx: BV
    fin_tx: BV


def fresh_state(prefix: str) -> LocalState:
    return LocalState(
        fresh_tcb(prefix),
        z3.BitVec(f"{prefix}.syn_tx", RETRY_BITS),
        z3.BitVec(f"{prefix}.synack_tx", RETRY_BITS),
        z3.BitVec(f"{prefix}.fin_tx", RETRY_BITS),
    )


def initial(state: LocalState) -> B:
    """CLOSED, nothing sent."""
    zero = bv(0, RETRY_BITS)
    closed = empty_tcb()
    same = [getattr(state.tcb, n) == getattr(closed, n) for n in closed.__dataclass_fields__]
    return z3.And(*same, state.syn_tx == zero, state.synack_tx == zero, state.fin_tx == zero)


@dataclass(frozen=True)
class LocalAction:
    name: str
    event: type
    active: bool = False
    timer: TimerKind | None = None
    remote: bool = False


ACTIONS: tuple[LocalAction, ...] = (
    LocalAction("OPEN (active)", OpenCall, active=True),
    LocalAction("OPEN (passive)", OpenCall),
    LocalAction("OPEN (passive, remote socket named)", OpenCall, remote=True),
    LocalAction("SEND", SendCall),
    LocalAction("RECEIVE", ReceiveCall),
    LocalAction("CLOSE", CloseCall),
    LocalAction("ABORT", AbortCall),
    LocalAction("SEGMENT ARRIVES", SegmentArrives),
    *(LocalAction(f"{k.value} timeout", Timeout, timer=k) for k in TimerKind),
)


@dataclass
class LocalStep:
    """One action from `pre`: its inputs, result, and the environment's assumptions."""

    action: LocalAction
    pre: LocalState
    post: LocalState
    result: StepResult
    segment: SymSeg | None
    length: BV | None
    new_iss: BV | None
    assumptions: B

    def signalled_error(self) -> B:
        return z3.Or(*[self.result.outs.signalled(r) for r in ERRORS])


def build_step(
    cfg: Config, pre: LocalState, action: LocalAction, tag: str, max_text: int = 0xFFFF
) -> LocalStep:
    """Apply `action` to `pre` with fresh inputs named after `tag`.

    `max_text` bounds the text of an arriving segment (the proofs allow what
    the header can carry; counterexample search asks for short ones).
    """
    seg = length = new_iss = None
    assumptions: list[B] = []
    if action.event is SegmentArrives:
        seg = fresh_seg(f"{tag}.seg")
        assumptions += [z3.ULE(seg.wnd, 0xFFFF), z3.ULE(seg.up, 0xFFFF)]
        assumptions.append(z3.ULE(seg.length, max_text))
    if action.event in (SegmentArrives, OpenCall, SendCall):
        new_iss = z3.BitVec(f"{tag}.iss", 32)
    if action.event is SendCall:
        length = z3.BitVec(f"{tag}.len", 32)
        assumptions += [length != 0, z3.ULE(length, SEND_LIMIT)]
        assumptions.append(z3.ULE(pre.tcb.snd_buf + length, SEND_LIMIT))
    event = SymEvent(
        action.event,
        active=action.active,
        remote=action.remote,
        timer=action.timer,
        segment=seg,
        length=length,
        new_iss=new_iss,
    )
    result = step(cfg, pre.tcb, event)
    answering: B = z3.BoolVal(False)
    if seg is not None:
        answering = z3.And(seg.syn, is_state(pre.tcb.state, S.SYN_RECEIVED))
    post = LocalState(result.tcb, *count_transmissions(pre, result, answering))
    return LocalStep(action, pre, post, result, seg, length, new_iss, z3.And(*assumptions))


def count_transmissions(pre: LocalState, result: StepResult, answering: B) -> tuple[BV, BV, BV]:
    """`ghost.count_transmissions` without the saturation (the proofs bound them);
    `answering`: `ghost.answers_syn`."""
    one, zero = bv(1, RETRY_BITS), bv(0, RETRY_BITS)
    syn_tx, synack_tx, fin_tx = pre.syn_tx, pre.synack_tx, pre.fin_tx
    for guard, seg in result.outs.emitted():
        syn_only = z3.And(
            seg.syn, z3.Not(seg.ack_bit), z3.Not(seg.fin), z3.Not(seg.rst), z3.Not(seg.urg)
        )
        syn_only = z3.And(syn_only, z3.Not(seg.psh))
        syn_tx += z3.If(z3.And(guard, syn_only), one, zero)
        synack = z3.And(guard, z3.Not(syn_only), seg.syn, seg.ack_bit, z3.Not(answering))
        synack_tx += z3.If(synack, one, zero)
        fin_tx += z3.If(z3.And(guard, seg.fin, seg.length == 0), one, zero)
    t = result.tcb
    syn_sent = is_state(t.state, S.SYN_SENT)
    syn_tx = z3.If(syn_sent, syn_tx, zero)
    synack_tx = z3.If(z3.Or(syn_sent, z3.Not(Endpoint.syn_unacked(t))), zero, synack_tx)
    fin_tx = z3.If(z3.Or(z3.Not(t.fin_sent), Endpoint.fin_acked(t)), zero, fin_tx)
    return syn_tx, synack_tx, fin_tx


# ----------------------------------------------------------- properties


TransitionProperty = Callable[[Config, LocalStep], B]


def ack_before_close(cfg: Config, s: LocalStep) -> B:
    """`catalogue._ack_before_close` for one endpoint."""
    b, a = s.pre.tcb, s.post.tcb
    outstanding = z3.And(b.fin_sent, z3.Not(Endpoint.fin_acked(b)))
    ends = is_state(a.state, S.CLOSED, S.TIME_WAIT)
    fine = z3.And(is_state(a.state, S.TIME_WAIT), Endpoint.fin_acked(a))
    excuses: list[B] = [fine, s.signalled_error()]
    if s.segment is not None:
        seg = s.segment
        excuses += [seg.rst, z3.And(seg.ack_bit, seq_ge(seg.ack, b.snd_nxt))]
    if s.action.event is AbortCall:
        excuses.append(z3.BoolVal(True))
    return z3.Implies(z3.And(outstanding, ends), z3.Or(*excuses))


def retransmission_bounded(cfg: Config, s: LocalStep) -> B:
    """`catalogue._retransmission_bounded`: at most 1 + retries of each."""
    p = s.post
    return z3.And(
        z3.ULE(p.syn_tx, cfg.syn_retries + 1),
        z3.ULE(p.synack_tx, cfg.synack_retries + 1),
        z3.ULE(p.fin_tx, cfg.retries + 1),
    )


def acked_text_delivered(cfg: Config, s: LocalStep) -> B:
    """Text a synchronized endpoint acknowledges is queued for the user or handed over.

    RCV.NXT may advance only over text that lands in the receive buffer or
    in a `Deliver` output, plus one for a FIN ("connection closing").
    """
    b, a = s.pre.tcb, s.post.tcb
    if s.segment is None:
        return z3.BoolVal(True)
    both = z3.And(is_state(b.state, *SYNCHRONIZED), is_state(a.state, *SYNCHRONIZED))
    delivered = bv(0)
    for o in s.result.outs.items:
        if o.kind is OutKind.DELIVER:
            delivered = delivered + z3.If(o.guard, o.length, bv(0))
    fin = z3.If(s.result.outs.signalled(Reply.CONNECTION_CLOSING), bv(1), bv(0))
    advanced = a.rcv_nxt - b.rcv_nxt
    return z3.Implies(both, advanced == (a.rcv_buf - b.rcv_buf) + delivered + fin)


def time_wait_entered(cfg: Config, s: LocalStep) -> B:
    """An endpoint that closed first leaves FIN-WAIT-1/2 or CLOSING for CLOSED only by RST or error.

    Otherwise it goes through TIME-WAIT, where a retransmitted FIN is ACKed
    again (3.10.7.4 eighth step; the catalogue's `time-wait-reacks-fin`).
    """
    if s.segment is None:
        return z3.BoolVal(True)
    b, a = s.pre.tcb, s.post.tcb
    closer = is_state(b.state, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING)
    return z3.Implies(
        z3.And(closer, is_state(a.state, S.CLOSED)), z3.Or(s.segment.rst, s.signalled_error())
    )


LOCAL_PROPERTIES: dict[str, TransitionProperty] = {
    "ack-before-close": ack_before_close,
    "retransmission-bounded": retransmission_bounded,
    "acked-text-delivered": acked_text_delivered,
    "time-wait-entered": time_wait_entered,
}
"""The transition properties by the name of the relation claim they state."""
