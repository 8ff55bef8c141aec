"""Sequence arithmetic modulo 2**32 (RFC 9293 3.4) and the acceptability test (Table 6)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from synack.model.seq import (
    MASK,
    acceptable,
    seq_add,
    seq_between,
    seq_ge,
    seq_gt,
    seq_le,
    seq_lt,
    seq_sub,
)

u32 = st.integers(0, MASK)


def test_wraps_from_max_to_zero() -> None:
    assert seq_add(MASK, 1) == 0
    assert seq_add(MASK - 1, 3) == 1
    assert seq_sub(0, MASK) == 1
    assert seq_lt(MASK, 0)
    assert seq_lt(MASK - 5, 3)
    assert seq_gt(0, MASK)
    assert not seq_lt(0, MASK)
    assert seq_le(MASK, MASK)
    assert seq_ge(2, MASK - 2)


def test_between_across_wrap() -> None:
    low = MASK - 2
    high = seq_add(low, 6)  # 3
    assert [x for x in (MASK - 3, MASK - 2, MASK, 0, 2, 3, 4) if seq_between(low, x, high)] == [
        MASK - 2,
        MASK,
        0,
        2,
    ]


def test_acceptability_table_6_across_wrap() -> None:
    rcv_nxt = MASK  # window covers MASK, 0, 1, 2
    # zero length, zero window: only SEG.SEQ = RCV.NXT
    assert acceptable(rcv_nxt, 0, MASK, 0)
    assert not acceptable(rcv_nxt, 0, 0, 0)
    # zero length, open window
    assert acceptable(rcv_nxt, 4, 2, 0)
    assert not acceptable(rcv_nxt, 4, 3, 0)
    assert not acceptable(rcv_nxt, 4, MASK - 1, 0)
    # text, zero window: never
    assert not acceptable(rcv_nxt, 0, MASK, 1)
    # text, open window: first or last octet inside
    assert acceptable(rcv_nxt, 4, MASK - 2, 4)  # last octet MASK+1 = 0 is inside
    assert not acceptable(rcv_nxt, 4, MASK - 3, 3)  # ends at MASK - 1, just before
    assert acceptable(rcv_nxt, 4, 2, 10)  # starts inside
    assert not acceptable(rcv_nxt, 4, 3, 10)  # starts just past the window


@given(u32, u32)
def test_lt_is_antisymmetric_and_le_consistent(a: int, b: int) -> None:
    if seq_sub(a, b) != 1 << 31:  # the antipode is ordered neither way
        assert seq_lt(a, b) != seq_lt(b, a) or a == b
    assert seq_le(a, b) == (seq_lt(a, b) or a == b)


@given(u32, st.integers(0, (1 << 31) - 1))
def test_add_moves_forward(a: int, n: int) -> None:
    b = seq_add(a, n)
    assert seq_sub(b, a) == n
    assert seq_le(a, b)
    assert seq_lt(a, b) == (n > 0)


@given(u32, st.integers(1, 1 << 16), st.integers(0, 1 << 16), st.integers(0, 1 << 17))
def test_acceptability_matches_definition(rcv_nxt: int, wnd: int, offset: int, length: int) -> None:
    """Table 6 for an open window, checked against plain integer arithmetic."""
    seq = seq_add(rcv_nxt, offset)
    first_in = 0 <= offset < wnd
    last = offset + length - 1
    last_in = length > 0 and 0 <= last % (1 << 32) < wnd
    expected = first_in if length == 0 else first_in or last_in
    assert acceptable(rcv_nxt, wnd, seq, length) == expected
