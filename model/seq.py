"""Sequence-number arithmetic modulo 2**32 (RFC 9293 section 3.4).

Every comparison of sequence or acknowledgment numbers in synack goes
through these helpers.  `a < b` here means "b is ahead of a by less than
half the sequence space", the usual serial-number reading of RFC 9293's
"=<" (and of Linux's `before()`/`after()`).
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def seq_add(a: int, n: int) -> int:
    """a + n modulo 2**32."""
    return (a + n) & MASK


def seq_sub(a: int, b: int) -> int:
    """The forward distance from b to a, in [0, 2**32)."""
    return (a - b) & MASK


def seq_lt(a: int, b: int) -> bool:
    """a < b modulo 2**32."""
    return 0 < ((b - a) & MASK) < HALF


def seq_le(a: int, b: int) -> bool:
    """a =< b modulo 2**32."""
    return ((b - a) & MASK) < HALF


def seq_gt(a: int, b: int) -> bool:
    """a > b modulo 2**32."""
    return seq_lt(b, a)


def seq_ge(a: int, b: int) -> bool:
    """a >= b modulo 2**32."""
    return seq_le(b, a)


def seq_between(low: int, x: int, high: int) -> bool:
    """low =< x < high, on the circle: x lies in the half-open range [low, high).

    This is the form used by the acceptability test, which is defined by the
    distance from `low` rather than by signed comparison, so it holds for a
    window of any size up to 2**32 - 1.
    """
    return ((x - low) & MASK) < ((high - low) & MASK)


def acceptable(rcv_nxt: int, rcv_wnd: int, seg_seq: int, seg_len: int) -> bool:
    """The segment acceptability test of RFC 9293 section 3.10.7.4 (Table 6).

    seg_len counts SYN and FIN as one octet each.
    """
    if seg_len == 0:
        if rcv_wnd == 0:
            return seg_seq == rcv_nxt
        return seq_between(rcv_nxt, seg_seq, seq_add(rcv_nxt, rcv_wnd))
    if rcv_wnd == 0:
        return False
    end = seq_add(rcv_nxt, rcv_wnd)
    return seq_between(rcv_nxt, seg_seq, end) or seq_between(
        rcv_nxt, seq_add(seg_seq, seg_len - 1), end
    )
