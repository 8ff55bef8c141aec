"""Boundary cases of SEGMENT ARRIVES (3.10.7), one RFC check at a time."""

from __future__ import annotations

import pytest

from synack.model import (
    CloseCall,
    Config,
    Flags,
    OpenCall,
    Reply,
    Segment,
    SegmentArrives,
    State,
    closed,
    step,
)
from synack.model.seq import MASK

from .util import emitted, established_pair, one_segment, signals

SYN, ACK, FIN, RST = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST


@pytest.mark.parametrize(
    ("ack", "acceptable"),
    [(MASK, False), (0, False), (1, True), (2, False), (1000, False)],
)
def test_syn_sent_ack_must_cover_exactly_our_syn(ack: int, acceptable: bool) -> None:
    """First check in SYN-SENT: SEG.ACK =< ISS or SEG.ACK > SND.NXT is reset (ISS = 0 here)."""
    client, _ = step(closed(), OpenCall(active=True, iss=0))
    new, out = step(client, SegmentArrives(Segment(SYN | ACK, 500, ack, 8)))
    if acceptable:
        assert new.state is State.ESTABLISHED
        assert one_segment(out) == Segment(ACK, 1, 501, 8)
    else:
        assert new.state is State.SYN_SENT
        assert one_segment(out) == Segment(RST, ack)


def test_syn_sent_unacceptable_ack_with_rst_is_dropped_silently() -> None:
    client, _ = step(closed(), OpenCall(active=True, iss=0))
    new, out = step(client, SegmentArrives(Segment(RST | ACK, 0, 5)))
    assert (new, out) == (client, ())


def test_syn_sent_rst_without_ack_is_dropped() -> None:
    client, _ = step(closed(), OpenCall(active=True, iss=0))
    new, out = step(client, SegmentArrives(Segment(RST, 0)))
    assert (new, out) == (client, ())


def test_closed_reset_forms() -> None:
    _, out = step(closed(), SegmentArrives(Segment(SYN, 10, 0, 8, b"ab")))
    assert one_segment(out) == Segment(RST | ACK, 0, 13)  # SEG.SEQ + SEG.LEN
    _, out = step(closed(), SegmentArrives(Segment(ACK, 10, 77)))
    assert one_segment(out) == Segment(RST, 77)
    _, out = step(closed(), SegmentArrives(Segment(RST, 10)))
    assert out == ()


def test_listen_ignores_rst_resets_ack_and_drops_the_rest() -> None:
    server, _ = step(closed(), OpenCall(active=False))
    assert step(server, SegmentArrives(Segment(RST, 1))) == (server, ())
    new, out = step(server, SegmentArrives(Segment(ACK | FIN, 1, 42)))
    assert new is server or new == server
    assert one_segment(out) == Segment(RST, 42)
    assert step(server, SegmentArrives(Segment(FIN, 1))) == (server, ())


@pytest.mark.parametrize(
    ("seq", "in_window"),
    [(300, False), (301, True), (308, True), (309, False)],
)
def test_synchronized_sequence_check(seq: int, in_window: bool) -> None:
    """First check: RCV.NXT = 301, RCV.WND = 8; an unacceptable segment gets an ACK."""
    client, _ = established_pair()
    new, out = step(client, SegmentArrives(Segment(ACK, seq, 101, 8, b"")))
    if in_window:
        assert emitted(out) == [] and new.state is State.ESTABLISHED
    else:
        assert one_segment(out) == Segment(ACK, 101, 301, 8)


def test_text_overlapping_rcv_nxt_is_trimmed_and_fin_beyond_window_dropped() -> None:
    client, _ = established_pair()
    # starts 2 octets early: only the new part is taken
    client, out = step(client, SegmentArrives(Segment(ACK, 299, 101, 8, b"xxab")))
    assert client.rcv_nxt == 303 and client.rcv_buf == b"ab"
    assert one_segment(out).ack == 303
    # 6 octets fill the window left (8 - 2 queued); the FIN lies beyond it
    client, out = step(client, SegmentArrives(Segment(FIN | ACK, 303, 101, 8, b"cdefgh")))
    assert client.state is State.ESTABLISHED, "a FIN outside the window is not processed"
    assert client.rcv_buf == b"abcdefgh" and one_segment(out).ack == 309


def test_future_segment_is_not_held() -> None:
    client, _ = established_pair()
    new, out = step(client, SegmentArrives(Segment(ACK, 303, 101, 8, b"zz")))
    assert new.rcv_nxt == 301 and new.rcv_buf == b""
    assert one_segment(out) == Segment(ACK, 101, 301, 8), "a duplicate ACK shows the hole"


def test_ack_of_unsent_data_gets_an_ack() -> None:
    client, _ = established_pair()
    new, out = step(client, SegmentArrives(Segment(ACK, 301, 500, 8)))
    assert new.snd_una == 101
    assert one_segment(out) == Segment(ACK, 101, 301, 8)


def test_syn_received_unacceptable_ack_is_reset() -> None:
    server, _ = step(closed(Config(), (300,)), OpenCall(active=False))
    server, _ = step(server, SegmentArrives(Segment(SYN, 100, 0, 8)))
    new, out = step(server, SegmentArrives(Segment(ACK, 101, 999, 8)))
    assert new.state is State.SYN_RECEIVED
    assert one_segment(out) == Segment(RST, 999)


def test_syn_received_from_active_open_refused_by_rst() -> None:
    client, _ = step(closed(), OpenCall(active=True, iss=100))
    client, _ = step(client, SegmentArrives(Segment(SYN, 300, 0, 8)))
    assert client.state is State.SYN_RECEIVED and not client.passive_open
    new, out = step(client, SegmentArrives(Segment(RST, 301)))
    assert new.state is State.CLOSED
    assert signals(out) == [Reply.CONNECTION_REFUSED]


def test_rst_in_closing_states_closes_silently() -> None:
    client, server = established_pair()
    server, out = step(server, CloseCall())
    client, out = step(client, SegmentArrives(one_segment(out)))
    client, out = step(client, CloseCall())
    assert client.state is State.LAST_ACK
    new, out = step(client, SegmentArrives(Segment(RST, 302)))
    assert new.state is State.CLOSED and signals(out) == []
