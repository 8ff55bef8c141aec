"""RFC 9293 sequence arithmetic in z3: 32-bit bit-vectors, unsigned and modular.

Each function mirrors the one of the same name in `model/seq.py`; the
fidelity tests evaluate both on the same concrete values (including the
wrap from 2**32 - 1 to 0) and require equal answers.  z3's `<` on
bit-vectors is signed, so only ULT/ULE appear here.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import z3

HALF = z3.BitVecVal(1 << 31, 32)
Seq: TypeAlias = Any  # a 32-bit z3.BitVecRef (z3 ships no type information)


def seq_lt(a: Seq, b: Seq) -> z3.BoolRef:
    d = b - a
    return z3.And(d != 0, z3.ULT(d, HALF))


def seq_le(a: Seq, b: Seq) -> z3.BoolRef:
    return z3.ULT(b - a, HALF)


def seq_between(low: Seq, x: Seq, high: Seq) -> z3.BoolRef:
    """low =< x < high on the circle (the distance from low decides)."""
    return z3.ULT(x - low, high - low)


def acceptable(rcv_nxt: Seq, rcv_wnd: Seq, seg_seq: Seq, seg_len: Seq) -> z3.BoolRef:
    """Table 6 of RFC 9293 section 3.10.7.4."""
    end = rcv_nxt + rcv_wnd
    zero_len = z3.If(rcv_wnd == 0, seg_seq == rcv_nxt, seq_between(rcv_nxt, seg_seq, end))
    with_text = z3.And(
        rcv_wnd != 0,
        z3.Or(
            seq_between(rcv_nxt, seg_seq, end),
            seq_between(rcv_nxt, seg_seq + seg_len - 1, end),
        ),
    )
    result: z3.BoolRef = z3.If(seg_len == 0, zero_len, with_text)
    return result


def rst_resets(rfc5961: bool, rcv_nxt: Seq, rcv_wnd: Seq, seg_seq: Seq) -> z3.BoolRef:
    """Whether a bare RST with SEG.SEQ ends a synchronized connection.

    The first two steps of SEGMENT ARRIVES as `model/arrives.py` runs them:
    the sequence check (Table 6, SEG.LEN = 0), then the RST check, which
    under RFC 5961 resets only at SEG.SEQ = RCV.NXT (elsewhere in the
    window it gets a challenge ACK).
    """
    in_window = acceptable(rcv_nxt, rcv_wnd, seg_seq, z3.BitVecVal(0, 32))
    if rfc5961:
        return z3.And(in_window, seg_seq == rcv_nxt)
    return in_window


def seq_gt(a: Seq, b: Seq) -> z3.BoolRef:
    return seq_lt(b, a)


def seq_ge(a: Seq, b: Seq) -> z3.BoolRef:
    return seq_le(b, a)
