"""Every strengthening clause of the z3 proofs, in one place.

A claim is proved by showing that its clauses hold initially, that every
action preserves each of them (a failure names the action and the
clause), and that together they imply the property.  Each clause says
why it is here: the counterexample to induction (CTI) that forced it,
i.e. the unreachable state from which an action broke the property or
another clause; or, where no CTI has forced it yet, that it was written
from the model's structure.

`LOCAL_CORE` is one lemma, the endpoint invariants, proved once per
configuration; a claim adds its `EXTRA_CLAUSES`, proved inductive given the
core, and is proved when the clauses imply it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import z3

from synack.harness.prove.z3local import SEND_LIMIT, LocalState
from synack.harness.prove.z3pair import NetSeg, PairState, has_irs, has_iss, sequences_agree
from synack.harness.prove.z3tcb import (
    RETRY_BITS,
    STATES,
    B,
    Endpoint,
    SymTcb,
    is_state,
    retry_limit,
    synchronized,
)
from synack.model import Config, State, Variant

S = State
E = Endpoint


@dataclass(frozen=True)
class Clause:
    name: str
    formula: Callable[[Config, LocalState], B]
    why: str


def _in_flight(cfg: Config, s: LocalState) -> B:
    t = s.tcb
    return E(cfg).in_flight(t)


CLOSING_STATES = (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT)


def _syn_unacked_states(cfg: Config) -> tuple[State, ...]:
    """Synchronized states the SYN can still be unacknowledged in (CLOSE in SYN-RECEIVED)."""
    if cfg.variant is Variant.EARLY_CLOSE:  # any acceptable ACK counts for the FIN
        return (S.FIN_WAIT_1, S.CLOSING, S.FIN_WAIT_2, S.TIME_WAIT)
    return (S.FIN_WAIT_1, S.CLOSING)


LOCAL_CORE: tuple[Clause, ...] = (
    Clause(
        "state-is-a-state",
        lambda cfg, s: z3.ULT(s.tcb.state, len(STATES)),
        "typing, not strengthening: the 4-bit state field has 16 values, 11 of them states",
    ),
    Clause(
        "no-tcb-no-state",
        lambda cfg, s: z3.Implies(
            is_state(s.tcb.state, S.CLOSED, S.LISTEN),
            z3.And(
                s.tcb.snd_buf == 0,
                s.tcb.rcv_buf == 0,
                z3.Not(s.tcb.fin_sent),
                z3.Not(s.tcb.fin_queued),
                z3.Not(s.tcb.rtx_timer),
                z3.Not(s.tcb.tw_timer),
                z3.Not(s.tcb.user_timer),
                s.tcb.snd_una == s.tcb.snd_nxt,
                z3.Not(s.tcb.syn_acked),
                s.tcb.retries == 0,
            ),
        ),
        "written from the model (deleted() and listening() clear everything), not yet "
        "forced by an observed CTI",
    ),
    Clause(
        "fin-sent-only-when-closing",
        lambda cfg, s: z3.And(
            z3.Implies(s.tcb.fin_sent, s.tcb.fin_queued),
            z3.Implies(s.tcb.fin_queued, is_state(s.tcb.state, S.SYN_RECEIVED, *CLOSING_STATES)),
            z3.Implies(s.tcb.fin_sent, is_state(s.tcb.state, *CLOSING_STATES)),
        ),
        "CTI: CLOSE-WAIT with fin_queued set (a combination CLOSE never makes: it moves "
        "CLOSE-WAIT to LAST-ACK) took a SYN,ACK and sent a FIN; hence the fin_queued part",
    ),
    Clause(
        "fin-wait-2-and-time-wait-have-fin-acked",
        lambda cfg, s: z3.Implies(
            is_state(s.tcb.state, S.FIN_WAIT_2, S.TIME_WAIT),
            s.tcb.fin_sent if cfg.variant is Variant.EARLY_CLOSE else E.fin_acked(s.tcb),
        ),
        "written from the model (FIN-WAIT-2 and TIME-WAIT are entered only once the FIN "
        "is acknowledged; under early-close once it is sent); ack-before-close relies on "
        "it for the TIME-WAIT timeout",
    ),
    Clause(
        "nothing-unsent-after-fin",
        lambda cfg, s: z3.Implies(s.tcb.fin_sent, E(cfg).unsent(s.tcb) == 0),
        "written from the model (the FIN follows the last queued octet), not yet forced by "
        "an observed CTI",
    ),
    Clause(
        "time-wait-timer-only-in-time-wait",
        lambda cfg, s: z3.Implies(s.tcb.tw_timer, is_state(s.tcb.state, S.TIME_WAIT)),
        "CTI: LAST-ACK with the TIME-WAIT timer armed, whose expiry deleted the TCB while "
        "the FIN was outstanding",
    ),
    Clause(
        "handshake-sequence-space",
        lambda cfg, s: z3.Implies(
            is_state(s.tcb.state, S.SYN_SENT, S.SYN_RECEIVED),
            z3.And(
                s.tcb.snd_nxt == s.tcb.iss + 1,
                z3.Not(s.tcb.fin_sent),
                z3.Or(
                    z3.And(s.tcb.snd_una == s.tcb.iss, z3.Not(s.tcb.syn_acked)),
                    z3.And(
                        z3.BoolVal(cfg.rule("request-socket")),
                        is_state(s.tcb.state, S.SYN_RECEIVED),
                        z3.Not(s.tcb.passive_open),
                        s.tcb.snd_una == s.tcb.iss + 1,
                        s.tcb.syn_acked,
                        z3.Not(s.tcb.rtx_timer),
                    ),
                ),
            ),
        ),
        "written from the model (only the SYN is in flight before synchronization); under "
        "linux a SYN,ACK reaching into a request socket's window makes the child socket, "
        "SYN-RECEIVED with the SYN acknowledged",
    ),
    Clause(
        "synchronized-syn-acked",
        lambda cfg, s: z3.Implies(
            z3.And(
                is_state(s.tcb.state, *CLOSING_STATES, S.ESTABLISHED, S.CLOSE_WAIT),
                z3.Not(s.tcb.syn_acked),
            ),
            s.tcb.snd_una == s.tcb.iss
            if cfg.variant is Variant.TWO_WAY_HANDSHAKE
            else z3.If(
                z3.And(
                    z3.BoolVal(cfg.rule("simultaneous-ack-of-nothing")),
                    z3.Not(s.tcb.passive_open),
                ),
                s.tcb.snd_una == s.tcb.iss,
                z3.And(
                    is_state(s.tcb.state, *_syn_unacked_states(cfg)),
                    s.tcb.fin_sent,
                    s.tcb.snd_una == s.tcb.iss,
                    s.tcb.snd_nxt == s.tcb.iss + 2,
                    s.tcb.snd_buf == 0,
                ),
            ),
        ),
        "CTI: CLOSE in SYN-RECEIVED sends the FIN at once (3.10.4) and enters FIN-WAIT-1 "
        "with the SYN unacknowledged; a segment whose old ACK is ignored can then carry "
        "the peer's FIN, giving CLOSING with SND.UNA = ISS as well.  Under early-close, "
        "CTI: that CLOSING took such an ACK into TIME-WAIT.  Under two-way-handshake the "
        "passive side is ESTABLISHED with its SYN unacknowledged, and anything can follow; "
        "so under linux for an active open, CTI: SYN-RECEIVED after a simultaneous open "
        "took SEG.ACK = ISS (rule simultaneous-ack-of-nothing) into ESTABLISHED",
    ),
    Clause(
        "in-flight-is-queued-text",
        lambda cfg, s: z3.And(
            z3.ULE(_in_flight(cfg, s), s.tcb.snd_buf),
            z3.ULE(s.tcb.snd_buf, SEND_LIMIT),
            z3.ULE(s.tcb.rcv_buf, cfg.rcv_wnd),
            z3.ULE(s.tcb.snd_wnd, 0xFFFF),
            z3.ULE(s.tcb.max_snd_wnd, 0xFFFF),
        ),
        "written from the model (SND.NXT - SND.UNA is the SYN, the text in flight and the "
        "FIN); it keeps transmit inside the encoding's loop bound",
    ),
    Clause(
        "retries-within-limit",
        lambda cfg, s: z3.ULE(s.tcb.retries, retry_limit(cfg, s.tcb)),
        "written from the model (retries saturate at the limit of the front segment), not "
        "yet forced by an observed CTI",
    ),
)


def _count_clause(cfg: Config, s: LocalState) -> B:
    t = s.tcb
    one = z3.BitVecVal(1, RETRY_BITS)
    syn_sent = is_state(t.state, S.SYN_SENT)
    synack_out = z3.And(E.syn_unacked(t), z3.Not(syn_sent))
    fin_out = z3.And(t.fin_sent, z3.Not(E.fin_acked(t)))
    return z3.And(
        s.syn_tx == z3.If(syn_sent, t.retries + one, 0),
        s.synack_tx == z3.If(synack_out, t.retries + one, 0),
        z3.Implies(
            fin_out,
            z3.And(
                z3.UGE(s.fin_tx, one),
                z3.ULE(s.fin_tx, t.retries + one),
                z3.Implies(z3.Or(_in_flight(cfg, s) != 0, synack_out), s.fin_tx == one),
            ),
        ),
        z3.Implies(z3.Not(fin_out), s.fin_tx == 0),
    )


TRANSMISSION_COUNTS = Clause(
    "transmissions-count-retries",
    _count_clause,
    "written from the model: each transmission of the front segment is one retry, and "
    "the FIN is retransmitted only once nothing is ahead of it.  CTI for the SYN,ACK part: "
    "CLOSING with SYN,ACK and FIN outstanding, FIN sent twice, took the ACK of the SYN "
    "(retries back to 0, so the FIN's count exceeded retries + 1)",
)

EXTRA_CLAUSES: dict[str, tuple[Clause, ...]] = {
    "retransmission-bounded": (TRANSMISSION_COUNTS,),
}
"""Clauses a claim needs beyond `LOCAL_CORE`, proved inductive assuming the core."""

CLAUSES: dict[str, Clause] = {c.name: c for c in (*LOCAL_CORE, TRANSMISSION_COUNTS)}


def holds(cfg: Config, clauses: tuple[Clause, ...], s: LocalState) -> B:
    return z3.And(*[c.formula(cfg, s) for c in clauses])


# ------------------------------------------------- the two-endpoint proofs


@dataclass(frozen=True)
class PairClause:
    """A clause over both TCBs and the ghost clock."""

    name: str
    formula: Callable[[PairState], B]
    why: str


@dataclass(frozen=True)
class SegmentClause:
    """A clause every segment of the network satisfies (RSTs are exempt: they
    synchronize nothing, and the proofs let them carry any numbers)."""

    name: str
    formula: Callable[[PairState, NetSeg], B]
    why: str


def _no_text_no_fin(t: SymTcb) -> B:
    return z3.And(
        t.snd_buf == 0,
        t.rcv_buf == 0,
        z3.Not(t.fin_sent),
        z3.Not(t.fin_queued),
        z3.Not(t.tw_timer),
    )


def _handshake_shape(t: SymTcb) -> B:
    return z3.And(
        z3.Implies(has_iss(t), t.snd_nxt == t.iss + 1),
        z3.Implies(
            is_state(t.state, S.SYN_SENT, S.SYN_RECEIVED),
            z3.And(t.snd_una == t.iss, z3.Not(t.syn_acked)),
        ),
        z3.Implies(is_state(t.state, S.ESTABLISHED), z3.And(t.snd_una == t.iss + 1, t.syn_acked)),
        z3.Implies(has_irs(t), t.rcv_nxt == t.irs + 1),
        z3.Implies(z3.Not(has_iss(t)), z3.And(t.snd_una == t.snd_nxt, z3.Not(t.syn_acked))),
    )


PAIR_CORE: tuple[PairClause, ...] = (
    PairClause(
        "roles",
        lambda p: z3.And(
            is_state(p.client.state, S.CLOSED, S.SYN_SENT, S.ESTABLISHED),
            is_state(p.server.state, S.CLOSED, S.LISTEN, S.SYN_RECEIVED, S.ESTABLISHED),
            z3.Implies(z3.Not(is_state(p.server.state, S.CLOSED)), p.server.passive_open),
        ),
        "written from the system: the client only opens actively and the server only "
        "passively, and the server never sends a SYN without an ACK",
    ),
    PairClause(
        "no-text-no-fin",
        lambda p: z3.And(_no_text_no_fin(p.client), _no_text_no_fin(p.server)),
        "written from the system: no SEND, no CLOSE",
    ),
    PairClause(
        "handshake-sequence-shape",
        lambda p: z3.And(_handshake_shape(p.client), _handshake_shape(p.server)),
        "written from the model: without text or FIN, SND.NXT = ISS + 1 and RCV.NXT = IRS + 1",
    ),
    PairClause(
        "ghost-clock",
        lambda p: z3.And(z3.ULE(p.c_born, p.clock), z3.ULE(p.s_born, p.clock)),
        "written from the system: an incarnation is born at the current tick",
    ),
    PairClause(
        "client-synchronized-with-current-server",
        lambda p: z3.Implies(
            z3.And(has_irs(p.client), has_iss(p.server), p.client.irs == p.server.iss),
            z3.And(has_irs(p.server), p.client.iss == p.server.irs),
        ),
        "written from the handshake: a client that took the current server's SYN,ACK was "
        "the incarnation whose SYN that server took",
    ),
    PairClause(
        "server-took-current-client-syn-later",
        lambda p: z3.Implies(
            z3.And(has_irs(p.server), has_iss(p.client), p.server.irs == p.client.iss),
            z3.ULT(p.c_born, p.s_born),
        ),
        "written from the system: the server incarnation is born taking the SYN",
    ),
    PairClause(
        "server-synchronized-with-current-client",
        lambda p: z3.Implies(
            z3.And(synchronized(p.server), has_iss(p.client), p.server.irs == p.client.iss),
            z3.And(has_irs(p.client), p.client.irs == p.server.iss),
        ),
        "written from the handshake: the ACK that synchronized the server came from the "
        "client incarnation that had taken its SYN,ACK",
    ),
    PairClause(
        "server-synchronized-with-older-client",
        lambda p: z3.Implies(
            z3.And(synchronized(p.server), has_iss(p.client), p.server.irs != p.client.iss),
            z3.ULT(p.s_born, p.c_born),
        ),
        "written from the proof of sequence agreement: a server synchronized with an "
        "earlier client incarnation is older than the current one",
    ),
    PairClause(
        "client-synchronized-after-server",
        lambda p: z3.Implies(has_irs(p.client), z3.ULT(p.c_born, p.s_born)),
        "written from the proof of sequence agreement: the server incarnation whose SYN,ACK "
        "the client took was born after the client, and the current one is no older",
    ),
    PairClause(
        "sequences-agree",
        sequences_agree,
        "the claim sequence-agreement itself, kept as a clause",
    ),
)


def _sender(p: PairState, m: NetSeg) -> tuple[B, B, B, B, B]:
    """The sender's ISS, IRS, has-ISS, has-IRS and birth tick, chosen by `from_client`."""
    return (
        z3.If(m.from_client, p.client.iss, p.server.iss),
        z3.If(m.from_client, p.client.irs, p.server.irs),
        z3.If(m.from_client, has_iss(p.client), has_iss(p.server)),
        z3.If(m.from_client, has_irs(p.client), has_irs(p.server)),
        z3.If(m.from_client, p.c_born, p.s_born),
    )


def _sender_incarnation(p: PairState, m: NetSeg) -> B:
    iss, irs, x_iss, x_irs, born = _sender(p, m)
    return z3.And(
        z3.ULE(m.g_born, born),
        z3.Implies(
            z3.And(x_iss, m.g_born == born),
            z3.And(m.g_iss == iss, z3.Implies(m.g_hasirs, z3.And(x_irs, m.g_irs == irs))),
        ),
        z3.Implies(z3.And(x_iss, m.g_born != born), m.g_iss != iss),
    )


def _not_rst(formula: Callable[[PairState, NetSeg], B]) -> Callable[[PairState, NetSeg], B]:
    return lambda p, m: z3.Implies(z3.Not(m.seg.rst), formula(p, m))


SEGMENT_CLAUSES: tuple[SegmentClause, ...] = (
    SegmentClause(
        "header-fields-fit",
        lambda p, m: z3.And(
            z3.ULE(m.seg.wnd, 0xFFFF), z3.ULE(m.seg.up, 0xFFFF), z3.ULE(m.seg.length, 0xFFFF)
        ),
        "CTI: a delivered segment with a 31-bit window (the model cannot even build one); "
        "every segment the model sends fits its header fields, RSTs included",
    ),
    SegmentClause(
        "no-text",
        _not_rst(lambda p, m: z3.And(m.seg.length == 0, z3.Not(m.seg.fin), z3.Not(m.seg.urg))),
        "written from the system: no SEND, no CLOSE",
    ),
    SegmentClause(
        "sequence-number-from-iss",
        _not_rst(lambda p, m: m.seg.seq == z3.If(m.seg.syn, m.g_iss, m.g_iss + 1)),
        "written from the model: a SYN carries the ISS, anything after it ISS + 1",
    ),
    SegmentClause(
        "acknowledgment-from-irs",
        _not_rst(
            lambda p, m: z3.And(
                m.seg.ack_bit == m.g_hasirs, z3.Implies(m.seg.ack_bit, m.seg.ack == m.g_irs + 1)
            )
        ),
        "written from the model: an ACK acknowledges IRS + 1, and only a sender with an IRS "
        "sets the ACK bit",
    ),
    SegmentClause(
        "segment-roles",
        _not_rst(
            lambda p, m: z3.If(
                m.from_client, z3.Not(z3.And(m.seg.syn, m.seg.ack_bit)), m.seg.ack_bit
            )
        ),
        "written from the system: the client sends SYN and ACK, the server SYN,ACK and ACK",
    ),
    SegmentClause(
        "sender-incarnation",
        _not_rst(_sender_incarnation),
        "written from the system: a segment of the sender's current incarnation carries its "
        "ISS and IRS; one of an earlier incarnation carries an ISS no longer in use",
    ),
    SegmentClause(
        "client-segment-synchronized-with-current-server",
        _not_rst(
            lambda p, m: z3.Implies(
                z3.And(m.from_client, m.g_hasirs, has_iss(p.server), m.g_irs == p.server.iss),
                z3.And(has_irs(p.server), m.g_iss == p.server.irs),
            )
        ),
        "written from the handshake: a client incarnation that took the current server's "
        "SYN,ACK is the one whose SYN that server took",
    ),
    SegmentClause(
        "older-client-synchronized-with-older-server",
        _not_rst(
            lambda p, m: z3.Implies(
                z3.And(
                    m.from_client,
                    m.g_hasirs,
                    has_iss(p.server),
                    m.g_irs == p.server.iss,
                    m.g_born != p.c_born,
                ),
                z3.ULT(p.s_born, p.c_born),
            )
        ),
        "written from the proof of sequence agreement: an earlier client incarnation "
        "synchronized with the current server only if that server is older than the client",
    ),
    SegmentClause(
        "server-segment-took-current-client-syn-later",
        _not_rst(
            lambda p, m: z3.Implies(
                z3.And(
                    z3.Not(m.from_client),
                    m.g_hasirs,
                    has_iss(p.client),
                    m.g_irs == p.client.iss,
                ),
                z3.ULT(p.c_born, m.g_born),
            )
        ),
        "written from the system: a server incarnation that took the current client's SYN "
        "was born after that client",
    ),
)

PAIR_CLAUSES: dict[str, PairClause] = {c.name: c for c in PAIR_CORE}
SEGMENT_CLAUSES_BY_NAME: dict[str, SegmentClause] = {c.name: c for c in SEGMENT_CLAUSES}


def pair_holds(p: PairState, names: tuple[str, ...]) -> B:
    return z3.And(True, *[PAIR_CLAUSES[n].formula(p) for n in names if n in PAIR_CLAUSES])


def segment_holds(p: PairState, m: NetSeg, names: tuple[str, ...]) -> B:
    clauses = [SEGMENT_CLAUSES_BY_NAME[n] for n in names if n in SEGMENT_CLAUSES_BY_NAME]
    return z3.And(True, *[c.formula(p, m) for c in clauses])
