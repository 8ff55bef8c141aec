"""Retransmission with bounded retries, give-up, TIME-WAIT and the user timeout (3.10.8)."""

from __future__ import annotations

from synack.model import (
    CloseCall,
    Config,
    Flags,
    OpenCall,
    Reply,
    Segment,
    SegmentArrives,
    SendCall,
    State,
    Tcb,
    Timeout,
    TimerKind,
    closed,
    step,
)

from .util import close_until_peer_fin, emitted, established_pair, one_segment, signals

RTO = Timeout(TimerKind.RETRANSMISSION)
SYN, ACK, FIN = Flags.SYN, Flags.ACK, Flags.FIN


def _expire_until_gone(tcb: Tcb, limit: int = 50) -> tuple[Tcb, list[Segment], list[object]]:
    """Fire the retransmission timer until it is no longer armed."""
    sent: list[Segment] = []
    replies: list[object] = []
    for _ in range(limit):
        if TimerKind.RETRANSMISSION not in tcb.timers:
            return tcb, sent, replies
        tcb, out = step(tcb, RTO)
        sent += emitted(out)
        replies += signals(out)
    raise AssertionError("the retransmission timer never stopped")


def test_syn_sent_at_most_one_plus_syn_retries_times() -> None:
    for retries in (0, 2, 5, 6):
        client, out = step(closed(Config(syn_retries=retries)), OpenCall(active=True, iss=7))
        first = one_segment(out)
        client, resent, replies = _expire_until_gone(client)
        assert [first, *resent] == [Segment(SYN, 7, 0, 8)] * (1 + retries)
        assert client.state is State.CLOSED
        assert replies == [Reply.ERROR_TIMED_OUT]


def test_synack_retries_then_the_listener_listens_again() -> None:
    server, _ = step(closed(Config(synack_retries=3), (300,)), OpenCall(active=False))
    server, out = step(server, SegmentArrives(Segment(SYN, 100, 0, 8)))
    first = one_segment(out)
    server, resent, replies = _expire_until_gone(server)
    assert [first, *resent] == [Segment(SYN | ACK, 300, 101, 8)] * 4
    assert server.state is State.LISTEN
    assert replies == [], "the user never knew of the half-open connection"


def test_fin_retransmitted_then_given_up() -> None:
    client, _ = established_pair(cfg=Config(retries=2))
    client, out = step(client, CloseCall())
    fin = one_segment(out)
    client, resent, replies = _expire_until_gone(client)
    assert resent == [fin, fin]
    assert (client.state, replies) == (State.CLOSED, [Reply.ERROR_TIMED_OUT])


def test_data_retransmitted_from_snd_una() -> None:
    client, _ = established_pair(cfg=Config(retries=1, mss=4))
    client, out = step(client, SendCall(b"abcdef"))
    assert [s.payload for s in emitted(out)] == [b"abcd", b"ef"]
    client, out = step(client, RTO)
    assert one_segment(out) == Segment(ACK, 101, 301, 8, b"abcd")
    # the peer ACKs the first segment: the front moves and the count restarts
    client, out = step(client, SegmentArrives(Segment(ACK, 301, 105, 8)))
    assert client.retries == 0 and client.snd_buf == b"ef"
    client, out = step(client, RTO)
    assert one_segment(out) == Segment(ACK, 105, 301, 8, b"ef")


def test_ack_of_everything_stops_the_timer() -> None:
    client, _ = established_pair()
    client, _ = step(client, SendCall(b"xy"))
    assert TimerKind.RETRANSMISSION in client.timers
    client, _ = step(client, SegmentArrives(Segment(ACK, 301, 103, 8)))
    assert TimerKind.RETRANSMISSION not in client.timers
    same, out = step(client, RTO)
    assert (same, out) == (client, ()), "an unarmed timer cannot expire"


def test_time_wait_reacks_a_retransmitted_fin_and_restarts() -> None:
    client, _, fin, _ = close_until_peer_fin(*established_pair())
    assert client.state is State.TIME_WAIT
    again, out = step(client, SegmentArrives(fin))  # our ACK was lost; the FIN comes again
    assert again.state is State.TIME_WAIT
    assert one_segment(out) == Segment(ACK, 102, 302, 8)
    assert any(getattr(o, "kind", None) is TimerKind.TIME_WAIT for o in out), "2 MSL restarts"
    gone, _ = step(again, Timeout(TimerKind.TIME_WAIT))
    assert gone.state is State.CLOSED


def test_user_timeout_aborts() -> None:
    client, _ = established_pair(cfg=Config(user_timeout=True))
    client, _ = step(client, SendCall(b"z"))
    assert TimerKind.USER in client.timers
    client, out = step(client, Timeout(TimerKind.USER))
    assert client.state is State.CLOSED
    assert signals(out) == [Reply.ERROR_USER_TIMEOUT]
    assert not emitted(out)


def test_zero_window_probe() -> None:
    """Text behind a zero window: the timer's expiry sends a one-octet probe (MUST-36)."""
    client, _ = established_pair()
    client, _ = step(client, SegmentArrives(Segment(ACK, 301, 101, 0)))  # window closes
    assert client.snd_wnd == 0
    client, out = step(client, SendCall(b"pq"))
    assert emitted(out) == [] and TimerKind.RETRANSMISSION in client.timers
    client, out = step(client, RTO)
    assert one_segment(out) == Segment(ACK, 101, 301, 8, b"p")
