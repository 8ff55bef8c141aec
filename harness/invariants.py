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

from synack.model import Config, State

from .z3local import SEND_LIMIT, LocalState
from .z3tcb import RETRY_BITS, STATES, B, Endpoint, is_state, retry_limit

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
            is_state(s.tcb.state, S.FIN_WAIT_2, S.TIME_WAIT), E.fin_acked(s.tcb)
        ),
        "written from the model (FIN-WAIT-2 and TIME-WAIT are entered only once the FIN "
        "is acknowledged); ack-before-close relies on it for the TIME-WAIT timeout",
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
                s.tcb.snd_una == s.tcb.iss,
                s.tcb.snd_nxt == s.tcb.iss + 1,
                z3.Not(s.tcb.syn_acked),
                z3.Not(s.tcb.fin_sent),
            ),
        ),
        "written from the model (only the SYN is in flight before synchronization), not "
        "yet forced by an observed CTI",
    ),
    Clause(
        "synchronized-syn-acked",
        lambda cfg, s: z3.Implies(
            z3.And(
                is_state(s.tcb.state, *CLOSING_STATES, S.ESTABLISHED, S.CLOSE_WAIT),
                z3.Not(s.tcb.syn_acked),
            ),
            z3.And(
                is_state(s.tcb.state, S.FIN_WAIT_1, S.CLOSING),
                s.tcb.fin_sent,
                s.tcb.snd_una == s.tcb.iss,
                s.tcb.snd_nxt == s.tcb.iss + 2,
                s.tcb.snd_buf == 0,
            ),
        ),
        "CTI: CLOSE in SYN-RECEIVED sends the FIN at once (3.10.4) and enters FIN-WAIT-1 "
        "with the SYN unacknowledged; a segment whose old ACK is ignored can then carry "
        "the peer's FIN, giving CLOSING with SND.UNA = ISS as well",
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
