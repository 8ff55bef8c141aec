"""The seed articles' seven segments: three to open, four to close.

Flags SYN, ACK, FIN; each side's ISN chosen per connection; the ACK of a
SYN or FIN is its sequence number plus one; the state of both sides after
each segment is the seeds' table.
"""

from __future__ import annotations

from synack.model import (
    CloseCall,
    Flags,
    OpenCall,
    SegmentArrives,
    State,
    Timeout,
    TimerKind,
    closed,
    step,
)

from .util import one_segment

SYN, ACK, FIN = Flags.SYN, Flags.ACK, Flags.FIN


def test_seven_segments_of_open_and_close() -> None:
    client, server = closed(iss_pool=(1000,)), closed(iss_pool=(5000,))
    server, _ = step(server, OpenCall(active=False))
    assert server.state is State.LISTEN

    # (1) client -> server: SYN, seq = client ISN
    client, out = step(client, OpenCall(active=True))
    s1 = one_segment(out)
    assert (s1.flags, s1.seq) == (SYN, 1000)
    server, out = step(server, SegmentArrives(s1))
    assert (client.state, server.state) == (State.SYN_SENT, State.SYN_RECEIVED)

    # (2) server -> client: SYN,ACK, seq = server ISN, ack = client ISN + 1
    s2 = one_segment(out)
    assert (s2.flags, s2.seq, s2.ack) == (SYN | ACK, 5000, 1001)
    client, out = step(client, SegmentArrives(s2))
    assert (client.state, server.state) == (State.ESTABLISHED, State.SYN_RECEIVED)

    # (3) client -> server: ACK, ack = server ISN + 1
    s3 = one_segment(out)
    assert (s3.flags, s3.seq, s3.ack) == (ACK, 1001, 5001)
    server, out = step(server, SegmentArrives(s3))
    assert not [o for o in out if hasattr(o, "segment")]
    assert (client.state, server.state) == (State.ESTABLISHED, State.ESTABLISHED)

    # (4) client -> server: FIN
    client, out = step(client, CloseCall())
    s4 = one_segment(out)
    assert (s4.flags, s4.seq, s4.ack) == (FIN | ACK, 1001, 5001)
    server, out = step(server, SegmentArrives(s4))
    assert (client.state, server.state) == (State.FIN_WAIT_1, State.CLOSE_WAIT)

    # (5) server -> client: ACK of the FIN, ack = FIN's seq + 1
    s5 = one_segment(out)
    assert (s5.flags, s5.seq, s5.ack) == (ACK, 5001, 1002)
    client, out = step(client, SegmentArrives(s5))
    assert not [o for o in out if hasattr(o, "segment")]
    assert (client.state, server.state) == (State.FIN_WAIT_2, State.CLOSE_WAIT)

    # (6) server -> client: FIN
    server, out = step(server, CloseCall())
    s6 = one_segment(out)
    assert (s6.flags, s6.seq, s6.ack) == (FIN | ACK, 5001, 1002)
    client, out = step(client, SegmentArrives(s6))
    assert (client.state, server.state) == (State.TIME_WAIT, State.LAST_ACK)

    # (7) client -> server: ACK of the FIN
    s7 = one_segment(out)
    assert (s7.flags, s7.seq, s7.ack) == (ACK, 1002, 5002)
    server, out = step(server, SegmentArrives(s7))
    assert (client.state, server.state) == (State.TIME_WAIT, State.CLOSED)

    # 2 MSL later the active closer is gone too.
    assert TimerKind.TIME_WAIT in client.timers
    client, _ = step(client, Timeout(TimerKind.TIME_WAIT))
    assert client.state is State.CLOSED
