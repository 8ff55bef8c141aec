"""Each profile rule and each variant delta, shown both ways on a single endpoint.

For every rule: the `rfc9293` behaviour, and the changed behaviour under the
profile or variant.  The property engines show the consequences on whole
systems; these tests pin the one-point deltas themselves.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from synack.model import (
    AbortCall,
    CloseCall,
    Config,
    Flags,
    OpenCall,
    Profile,
    ReceiveCall,
    Reply,
    Segment,
    SegmentArrives,
    SendCall,
    State,
    Tcb,
    Timeout,
    TimerKind,
    Variant,
    closed,
    step,
)
from synack.model.ghost import App, answers_syn, count_transmissions

from .util import close_until_peer_fin, emitted, established_pair, one_segment, signals

RFC = Config()
LINUX = Config(profile=Profile.LINUX)
ACK, RST, SYN, FIN = Flags.ACK, Flags.RST, Flags.SYN, Flags.FIN


def test_in_window_rst_not_at_rcv_nxt() -> None:
    """RFC 5961 3.2: reset only at RCV.NXT exactly; otherwise a challenge ACK."""
    for cfg, resets in ((RFC, True), (LINUX, False)):
        client, _ = established_pair(cfg=cfg)  # RCV.NXT = 301, window 8
        new, out = step(client, SegmentArrives(Segment(RST, 303)))
        if resets:
            assert new.state is State.CLOSED
            assert signals(out) == [Reply.CONNECTION_RESET]
        else:
            assert new.state is State.ESTABLISHED
            seg = one_segment(out)
            assert (seg.flags, seg.seq, seg.ack) == (ACK, 101, 301)
        exact, out = step(client, SegmentArrives(Segment(RST, 301)))
        assert exact.state is State.CLOSED and Reply.CONNECTION_RESET in signals(out)


def test_syn_in_synchronized_state() -> None:
    """RFC 5961 4.2: challenge ACK; RFC 793 text: in-window SYN resets the connection."""
    for cfg in (RFC, LINUX):
        client, _ = established_pair(cfg=cfg)
        new, out = step(client, SegmentArrives(Segment(SYN, 302, 0, 8)))
        seg = one_segment(out)
        if cfg is RFC:
            assert new.state is State.CLOSED
            assert (seg.flags, seg.seq) == (RST, 101)
            assert Reply.CONNECTION_RESET in signals(out)
        else:
            assert new.state is State.ESTABLISHED
            assert (seg.flags, seg.seq, seg.ack) == (ACK, 101, 301)


def test_ack_of_data_never_sent_below_window() -> None:
    """RFC 5961 5.2: an ACK far below SND.UNA is discarded with an ACK (linux)."""
    for cfg in (RFC, LINUX):
        client, _ = established_pair(cfg=cfg)
        old_ack = (client.snd_una - 1000) & 0xFFFFFFFF
        new, out = step(client, SegmentArrives(Segment(ACK | FIN, 301, old_ack, 8)))
        if cfg is RFC:  # a duplicate ACK is ignored and the FIN is processed
            assert new.state is State.CLOSE_WAIT
        else:
            assert new.state is State.ESTABLISHED
            assert one_segment(out).ack == 301


def test_rst_in_syn_sent_is_refused_on_linux() -> None:
    for cfg, reply in ((RFC, Reply.CONNECTION_RESET), (LINUX, Reply.CONNECTION_REFUSED)):
        client, _ = step(closed(cfg), OpenCall(active=True, iss=100))
        new, out = step(client, SegmentArrives(Segment(RST | ACK, 0, 101)))
        assert new.state is State.CLOSED
        assert signals(out) == [reply]


def test_abort_reset_form() -> None:
    for cfg, flags in ((RFC, RST), (LINUX, RST | ACK)):
        client, _ = established_pair(cfg=cfg)
        new, out = step(client, AbortCall())
        seg = one_segment(out)
        assert new.state is State.CLOSED
        assert (seg.flags, seg.seq) == (flags, 101)


def _server_in_time_wait(cfg: Config) -> tuple[object, object]:
    """The server closes first and ends in TIME-WAIT (it came from a passive OPEN)."""
    client, server = established_pair(cfg=cfg)
    server, out = step(server, CloseCall())
    client, out = step(client, SegmentArrives(one_segment(out)))
    server, _ = step(server, SegmentArrives(one_segment(out)))
    client, out = step(client, CloseCall())
    server, out = step(server, SegmentArrives(one_segment(out)))
    assert server.state is State.TIME_WAIT
    return client, server


def test_new_syn_in_time_wait() -> None:
    """Linux (RFC 6191 style): a SYN above RCV.NXT reopens from TIME-WAIT."""
    for cfg in (RFC, LINUX):
        _, server = _server_in_time_wait(cfg)
        syn = Segment(SYN, 5000, 0, 8)  # far above RCV.NXT = 102: out of window
        new, out = step(server, SegmentArrives(syn))  # type: ignore[arg-type]
        seg = one_segment(out)
        if cfg is RFC:
            assert new.state is State.TIME_WAIT
            assert (seg.flags, seg.ack) == (ACK, 102)
        else:
            assert new.state is State.SYN_RECEIVED
            assert (seg.flags, seg.ack) == (SYN | ACK, 5001)
            assert seg.seq == (server.snd_nxt + 65537) & 0xFFFFFFFF  # type: ignore[attr-defined]


def test_linux_time_wait_without_listener_acks_the_syn() -> None:
    _, server = _server_in_time_wait(LINUX)
    active_tw = replace(server, passive_open=False)  # type: ignore[type-var]
    new, out = step(active_tw, SegmentArrives(Segment(SYN, 5000, 0, 8)))
    assert new.state is State.TIME_WAIT
    assert one_segment(out).flags == ACK


# ------------------------------------------------------------------ variants


def test_two_way_handshake_establishes_on_syn() -> None:
    for variant, state in (
        (None, State.SYN_RECEIVED),
        (Variant.TWO_WAY_HANDSHAKE, State.ESTABLISHED),
    ):
        server, _ = step(closed(Config(variant=variant), (300,)), OpenCall(active=False))
        new, out = step(server, SegmentArrives(Segment(SYN, 90, 0, 8)))  # an old duplicate
        assert new.state is state
        assert one_segment(out).flags == SYN | ACK


def test_no_time_wait_goes_straight_to_closed() -> None:
    for variant, state in ((None, State.TIME_WAIT), (Variant.NO_TIME_WAIT, State.CLOSED)):
        client, server = established_pair(cfg=Config(variant=variant))
        client, server, fin, out = close_until_peer_fin(client, server)
        assert client.state is state
        assert one_segment(out).flags == ACK  # the FIN is ACKed either way
        # the retransmitted FIN: re-ACKed in TIME-WAIT, answered by RST when CLOSED
        _, out = step(client, SegmentArrives(fin))
        assert one_segment(out).flags == (ACK if variant is None else RST)


def test_unchecked_synack_accepts_any_ack() -> None:
    for variant in (None, Variant.UNCHECKED_SYNACK):
        client, _ = step(closed(Config(variant=variant)), OpenCall(active=True, iss=100))
        old_synack = Segment(SYN | ACK, 300, 91, 8)  # answers an old SYN with ISN 90
        new, out = step(client, SegmentArrives(old_synack))
        seg = one_segment(out)
        if variant is None:
            assert new.state is State.SYN_SENT
            assert (seg.flags, seg.seq) == (RST, 91)  # RFC 9293 Figure 8 line 5
        else:
            assert new.state is State.ESTABLISHED
            assert new.irs == 300


def test_early_close_leaves_fin_wait_1_on_any_ack() -> None:
    for variant, state in ((None, State.FIN_WAIT_1), (Variant.EARLY_CLOSE, State.FIN_WAIT_2)):
        client, _ = established_pair(cfg=Config(variant=variant))
        client, out = step(client, CloseCall())
        assert client.state is State.FIN_WAIT_1
        assert one_segment(out).flags == FIN | ACK
        # An ACK that does not cover the FIN (e.g. a duplicate of the handshake ACK).
        new, out = step(client, SegmentArrives(Segment(ACK, 301, 101, 8)))
        assert new.state is state
        assert emitted(out) == []


def test_impossible_configurations_are_refused() -> None:
    for bad in ({"rcv_wnd": (1 << 30) + 1}, {"rcv_wnd": -1}, {"mss": 0}, {"syn_retries": -1}):
        with pytest.raises(ValueError):
            Config(**bad)  # type: ignore[arg-type]


# ------------------------------------------- linux rules found by the fuzzer


def _close_wait(cfg: Config) -> Tcb:
    """The server after the client's FIN (RCV.NXT = 102, the FIN still unread)."""
    _, server = established_pair(cfg=cfg)
    server, _ = step(server, SegmentArrives(Segment(FIN | ACK, 101, 301, 8)))
    assert server.state is State.CLOSE_WAIT and server.rcv_nxt == 102
    return server


@pytest.mark.parametrize("flags", [RST, RST | FIN])
def test_rst_at_the_fins_number_resets_after_the_fin(flags: Flags) -> None:
    """Linux tcp_reset_check(): RCV.NXT - 1 resets in CLOSE-WAIT; RFC 9293 drops it."""
    for cfg in (RFC, LINUX):
        new, out = step(_close_wait(cfg), SegmentArrives(Segment(flags, 101)))
        assert emitted(out) == []
        assert new.state is (State.CLOSED if cfg is LINUX else State.CLOSE_WAIT)


def test_linux_sequence_test_is_stricter_while_the_queue_holds_the_fin() -> None:
    """Since 6.17 a segment ending beyond the window passes only with an empty receive
    queue; a FIN may stick out by its one number."""
    unread = _close_wait(LINUX)
    assert unread.eof_queued
    read, out = step(unread, ReceiveCall())  # the application reads the end of stream
    assert not read.eof_queued and signals(out) == [Reply.ERROR_CONNECTION_CLOSING]
    edge = 102 + unread.rcv_wnd
    beyond = Segment(RST, edge, 0, 8, b"x")  # ends one beyond the right edge
    for tcb, challenged in ((unread, False), (read, True)):
        _, out = step(tcb, SegmentArrives(beyond))
        assert [s.flags for s in emitted(out)] == ([ACK] if challenged else [])
    _, out = step(unread, SegmentArrives(Segment(RST | FIN, edge)))  # the FIN sticks out
    assert [s.flags for s in emitted(out)] == [ACK]  # accepted: a challenge ACK


def test_simultaneous_open_ack_of_nothing_new() -> None:
    """Linux's full socket takes SEG.ACK = SND.UNA in SYN-RECEIVED; the SYN stays unacked."""
    for cfg in (RFC, LINUX):
        client, _ = step(closed(cfg), OpenCall(active=True, iss=100))
        client, _ = step(client, SegmentArrives(Segment(SYN, 300, 0, 8)))
        assert client.state is State.SYN_RECEIVED
        new, out = step(client, SegmentArrives(Segment(ACK, 301, 100, 8)))
        if cfg is RFC:
            assert new.state is State.SYN_RECEIVED
            assert [(s.flags, s.seq) for s in emitted(out)] == [(RST, 100)]
            continue
        assert new.state is State.ESTABLISHED and new.syn_unacked and emitted(out) == []
        _, out = step(new, Timeout(TimerKind.RETRANSMISSION))
        assert [(s.flags, s.seq, s.ack) for s in emitted(out)] == [(SYN | ACK, 100, 301)]


def test_request_socket_answers_a_retransmitted_syn_with_the_synack() -> None:
    for cfg in (RFC, LINUX):
        server, _ = step(closed(cfg, (300,)), OpenCall(active=False))
        server, _ = step(server, SegmentArrives(Segment(SYN, 100, 0, 8)))
        again, out = step(server, SegmentArrives(Segment(SYN, 100, 0, 8)))
        seg = one_segment(out)
        assert again.state is State.SYN_RECEIVED and again.retries == server.retries
        expected = (SYN | ACK, 300) if cfg is LINUX else (ACK, 301)
        assert (seg.flags, seg.seq, seg.ack) == (*expected, 101)
        # The answer is not a transmission of ours: R2 bounds the timer's.
        app = count_transmissions(
            App(), again, out, 8, answers_syn(server, SegmentArrives(Segment(SYN, 100, 0, 8)))
        )
        assert app.synack_tx == 0


def test_linux_time_wait_syn_without_a_listener_is_acked() -> None:
    _, server = _server_in_time_wait(LINUX.with_(listener_kept=False))
    new, out = step(server, SegmentArrives(Segment(SYN, 5000, 0, 8)))  # type: ignore[arg-type]
    assert new.state is State.TIME_WAIT
    assert one_segment(out).flags == ACK


def test_header_prediction_is_a_choice_of_the_linux_profile() -> None:
    """Text at RCV.NXT with a too-old ACK: taken by the fast path, or challenged."""
    client, _ = established_pair(cfg=LINUX)
    segment = Segment(ACK, 301, 50, 8, b"ab")  # SEG.ACK far below SND.UNA = 101
    for fast in (True, False):
        tcb = replace(client, cfg=LINUX.with_(header_prediction=fast))
        new, out = step(tcb, SegmentArrives(segment))
        assert one_segment(out).ack == (303 if fast else 301)
        assert new.rcv_buf == (b"ab" if fast else b"")


def test_linux_retransmission_collapses_the_fin_into_the_text() -> None:
    for cfg in (RFC, LINUX):
        client, _ = established_pair(cfg=cfg)
        client, _ = step(client, SendCall(b"ab"))
        client, out = step(client, CloseCall())
        assert [s.flags for s in emitted(out)] == [FIN | ACK]  # the text went out on SEND
        _, out = step(client, Timeout(TimerKind.RETRANSMISSION))
        seg = one_segment(out)
        assert (seg.seq, seg.payload) == (101, b"ab")
        assert seg.flags == (FIN | ACK if cfg is LINUX else ACK)
        # The FIN riding on the text is not a transmission of the FIN's own.
        app = count_transmissions(App(fin_tx=1), client, out, 8)
        assert app.fin_tx == 1
