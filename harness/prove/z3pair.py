"""Two endpoints and the network of every segment ever sent: the two-endpoint proofs.

The client opens actively and the server passively, each any number of
times (incarnations); both run `z3step.step`.  The network is the set of
every segment either side has ever sent: a delivery hands the receiver any
member of it, any number of times, in any order, or never.  The proofs do
not store that set.  They keep a clause that holds of every member (the
segment clauses of `invariants.py`), and show that each step keeps it for
an arbitrary member and for every segment the step adds.

Each sent segment carries ghost tags of its sender at the time of sending:
which side, its ISS and IRS (and whether it had an IRS), and `born`, the
value of a ghost clock that ticks when an incarnation begins (a TCB gets
an ISS).  The tags say nothing to the endpoints; the claims are stated in
them ("synchronizes only on a segment of the peer incarnation whose ISS is
its IRS and whose IRS is its ISS").

Scope: connection establishment, RST, ABORT, retransmission and give-up.
No SEND or CLOSE, so no text and no FIN; the one-endpoint claims cover
those.  Assumption (RFC 9293 3.4.1): a new ISS differs from every ISS and
IRS still in use (in a TCB or in a segment of the network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import z3

from synack.harness.prove.z3local import LocalAction
from synack.harness.prove.z3step import StepResult, SymEvent, step
from synack.harness.prove.z3tcb import (
    BV,
    B,
    SymSeg,
    SymTcb,
    empty_tcb,
    fresh_seg,
    fresh_tcb,
    is_state,
    synchronized,
)
from synack.model import (
    AbortCall,
    Config,
    OpenCall,
    SegmentArrives,
    State,
    Timeout,
    TimerKind,
)

S = State
MAX_CLOCK = (1 << 32) - 2
"""The ghost clock counts incarnations; the proofs cover fewer than 2**32 - 1 of them."""


def has_iss(t: SymTcb) -> B:
    return z3.Not(is_state(t.state, S.CLOSED, S.LISTEN))


def has_irs(t: SymTcb) -> B:
    return z3.Not(is_state(t.state, S.CLOSED, S.LISTEN, S.SYN_SENT))


@dataclass(frozen=True)
class NetSeg:
    """A segment of the network with its sender's ghost tags."""

    seg: SymSeg
    from_client: B
    g_iss: BV
    g_irs: BV
    g_hasirs: B
    g_born: BV


def fresh_netseg(prefix: str) -> NetSeg:
    return NetSeg(
        fresh_seg(prefix),
        z3.Bool(f"{prefix}.from_client"),
        z3.BitVec(f"{prefix}.g_iss", 32),
        z3.BitVec(f"{prefix}.g_irs", 32),
        z3.Bool(f"{prefix}.g_hasirs"),
        z3.BitVec(f"{prefix}.g_born", 32),
    )


@dataclass(frozen=True)
class PairState:
    client: SymTcb
    server: SymTcb
    c_born: BV
    s_born: BV
    clock: BV

    def side(self, client: bool) -> SymTcb:
        return self.client if client else self.server

    def born(self, client: bool) -> BV:
        return self.c_born if client else self.s_born


def fresh_pair(prefix: str) -> PairState:
    return PairState(
        fresh_tcb(f"{prefix}.c"),
        fresh_tcb(f"{prefix}.s"),
        z3.BitVec(f"{prefix}.c_born", 32),
        z3.BitVec(f"{prefix}.s_born", 32),
        z3.BitVec(f"{prefix}.clock", 32),
    )


def initial_pair(p: PairState) -> B:
    """Both CLOSED, nothing sent, the clock at 0."""
    closed = empty_tcb()
    same = [
        getattr(t, n) == getattr(closed, n)
        for t in (p.client, p.server)
        for n in closed.__dataclass_fields__
    ]
    return z3.And(*same, p.c_born == 0, p.s_born == 0, p.clock == 0)


@dataclass(frozen=True)
class PairAction:
    client: bool
    local: LocalAction

    @property
    def name(self) -> str:
        return f"{'client' if self.client else 'server'} {self.local.name}"


def _side_actions(client: bool) -> tuple[PairAction, ...]:
    locals_ = (
        LocalAction("OPEN (active)", OpenCall, active=True)
        if client
        else LocalAction("OPEN (passive)", OpenCall),
        LocalAction("ABORT", AbortCall),
        LocalAction("SEGMENT ARRIVES", SegmentArrives),
        LocalAction("retransmission timeout", Timeout, timer=TimerKind.RETRANSMISSION),
        LocalAction("user timeout", Timeout, timer=TimerKind.USER),
    )
    return tuple(PairAction(client, a) for a in locals_)


PAIR_ACTIONS: tuple[PairAction, ...] = (*_side_actions(True), *_side_actions(False))


@dataclass
class PairStep:
    action: PairAction
    pre: PairState
    post: PairState
    result: StepResult
    delivered: NetSeg | None
    new_iss: BV | None
    sent: list[tuple[B, NetSeg]]
    assumptions: B

    def fresh(self, known: list[tuple[B, NetSeg]]) -> B:
        """The new ISS is not in use: RFC 9293 3.4.1's assumption, against `known` segments."""
        if self.new_iss is None:
            return z3.BoolVal(True)
        i = self.new_iss
        facts = []
        for t in (self.pre.client, self.pre.server):
            facts += [z3.Implies(has_iss(t), i != t.iss), z3.Implies(has_irs(t), i != t.irs)]
        for guard, n in known:
            facts.append(z3.Implies(guard, z3.And(i != n.g_iss, i != n.g_irs)))
        return z3.And(*facts)


def build_pair_step(cfg: Config, pre: PairState, action: PairAction, tag: str) -> PairStep:
    client = action.client
    x = pre.side(client)
    delivered = new_iss = None
    assumptions: list[B] = [z3.ULT(pre.clock, MAX_CLOCK)]
    if action.local.event is SegmentArrives:
        delivered = fresh_netseg(f"{tag}.m0")
        assumptions.append(delivered.from_client == z3.BoolVal(not client))
    if action.local.event in (SegmentArrives, OpenCall):
        new_iss = z3.BitVec(f"{tag}.iss", 32)
    event = SymEvent(
        action.local.event,
        active=action.local.active,
        timer=action.local.timer,
        segment=None if delivered is None else delivered.seg,
        new_iss=new_iss,
    )
    result = step(cfg, x, event)
    after = result.tcb
    birth = z3.And(z3.Not(has_iss(x)), has_iss(after))
    clock = z3.If(birth, pre.clock + 1, pre.clock)
    born = z3.If(birth, clock, pre.born(client))
    if client:
        post = PairState(after, pre.server, born, pre.s_born, clock)
    else:
        post = PairState(pre.client, after, pre.c_born, born, clock)
    sent = [
        (guard, NetSeg(seg, z3.BoolVal(client), after.iss, after.irs, has_irs(after), born))
        for guard, seg in result.outs.emitted()
    ]
    return PairStep(action, pre, post, result, delivered, new_iss, sent, z3.And(*assumptions))


# ----------------------------------------------------------- the claims

PairProperty = Callable[[Config, PairStep], B]


def synchronizes_on_current_syn(cfg: Config, s: PairStep) -> B:
    """An endpoint becomes synchronized only on a segment of the peer incarnation
    whose ISS is its IRS and whose IRS is its ISS (it took our SYN, we took its)."""
    b, a = s.pre.side(s.action.client), s.post.side(s.action.client)
    becomes = z3.And(z3.Not(synchronized(b)), synchronized(a))
    if s.delivered is None:
        return z3.Not(becomes)
    m = s.delivered
    return z3.Implies(becomes, z3.And(m.g_hasirs, m.g_iss == a.irs, m.g_irs == a.iss))


def sequences_agree(p: PairState) -> B:
    """Both ESTABLISHED: each IRS is the other's ISS, and SND.NXT / RCV.NXT match."""
    c, s = p.client, p.server
    both = z3.And(is_state(c.state, S.ESTABLISHED), is_state(s.state, S.ESTABLISHED))
    return z3.Implies(
        both,
        z3.And(c.irs == s.iss, s.irs == c.iss, c.snd_nxt == s.rcv_nxt, s.snd_nxt == c.rcv_nxt),
    )


def sequence_agreement(cfg: Config, s: PairStep) -> B:
    return sequences_agree(s.post)


PAIR_PROPERTIES: dict[str, PairProperty] = {
    "no-old-syn-connection": synchronizes_on_current_syn,
    "sequence-agreement": sequence_agreement,
}
