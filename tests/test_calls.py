"""User calls (3.10.1-3.10.5) where the RFC distinguishes how the OPEN was made."""

from __future__ import annotations

from synack.model import (
    Flags,
    OpenCall,
    Reply,
    Segment,
    SegmentArrives,
    SendCall,
    State,
    closed,
    step,
)

from .util import emitted, one_segment, signals

SYN, ACK, RST = Flags.SYN, Flags.ACK, Flags.RST


def test_send_in_listen_without_remote_socket_is_an_error() -> None:
    listener, _ = step(closed(iss_pool=(500,)), OpenCall(active=False))
    new, out = step(listener, SendCall(b"hi"))
    assert new == listener
    assert signals(out) == [Reply.ERROR_REMOTE_UNSPECIFIED]
    assert emitted(out) == []


def test_send_in_listen_with_remote_socket_turns_active() -> None:
    """3.10.2 LISTEN: "change the connection from passive to active, select an ISS.
    Send a SYN segment, set SND.UNA to ISS, SND.NXT to ISS+1.  Enter SYN-SENT"."""
    listener, _ = step(closed(iss_pool=(500,)), OpenCall(active=False, remote=True))
    assert listener.state is State.LISTEN and listener.remote_specified
    sent, out = step(listener, SendCall(b"hi"))
    assert sent.state is State.SYN_SENT
    assert (sent.iss, sent.snd_una, sent.snd_nxt) == (500, 500, 501)
    assert not sent.passive_open
    assert one_segment(out).flags == SYN and one_segment(out).seq == 500
    assert sent.snd_buf == b"hi"  # queued for transmission after ESTABLISHED
    est, out = step(sent, SegmentArrives(Segment(SYN | ACK, 900, 501, 8)))
    assert est.state is State.ESTABLISHED
    assert [s.payload for s in emitted(out)] == [b"", b"hi"]  # the ACK, then the text


def test_listen_returning_from_syn_received_keeps_the_remote_socket() -> None:
    listener, _ = step(closed(iss_pool=(500,)), OpenCall(active=False, remote=True))
    received, _ = step(listener, SegmentArrives(Segment(SYN, 900, 0, 8)))
    assert received.state is State.SYN_RECEIVED
    back, _ = step(received, SegmentArrives(Segment(RST, 901)))
    assert back.state is State.LISTEN and back.remote_specified
