"""RFC 9293 Figures 6-13, replayed line by line with the figures' own numbers.

Each figure line is one event fed to one endpoint: a user call, a timer
expiry, or the arrival of a segment.  A segment that arrives is the very
`Segment` object the peer's `step` emitted (never a hand-made copy), except
where the figure shows a genuinely external segment (an old duplicate SYN),
which is built by hand.  After each line the test asserts, in one
comparison, the state of both peers and the segments the event made the
endpoint emit, written as the figure writes them: `(flags, seq)` for a
segment without the ACK bit, `(flags, seq, ack)` with it.  Timer outputs
are left out of that comparison; segments are compared exactly.

The figure's states are the states AFTER the departure or arrival of the
line's segment (RFC 9293 section 3.5).  The model answers an arrival in the
same step, so a segment the figure draws departing on line n+1 is usually
emitted by the arrival on line n; the comments say where.

All figures use the default `rfc9293` profile.  Peers that a figure shows
already synchronized ("send 300, receive 100", or ESTABLISHED with A at 100
and B at 300) are brought there by a real three-way handshake whose ISNs
are chosen one below the figure's numbers (A 99, B 299).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from synack.model import (
    CloseCall,
    Config,
    Deliver,
    Emit,
    Flags,
    OpenCall,
    Profile,
    ReceiveCall,
    Reply,
    Segment,
    SegmentArrives,
    SendCall,
    Signal,
    State,
    Tcb,
    Timeout,
    TimerKind,
    closed,
    step,
)
from synack.model.types import Event, Output

SYN, ACK, FIN, RST = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST
SYN_ACK = SYN | ACK
FIN_ACK = FIN | ACK

CLOSED = State.CLOSED
LISTEN = State.LISTEN
SYN_SENT = State.SYN_SENT
SYN_RECEIVED = State.SYN_RECEIVED
ESTABLISHED = State.ESTABLISHED
FIN_WAIT_1 = State.FIN_WAIT_1
FIN_WAIT_2 = State.FIN_WAIT_2
CLOSE_WAIT = State.CLOSE_WAIT
CLOSING = State.CLOSING
LAST_ACK = State.LAST_ACK
TIME_WAIT = State.TIME_WAIT

RFC9293 = Config(profile=Profile.RFC9293)

# ---------------------------------------------------------------- helpers


SegmentView = tuple[Flags, int] | tuple[Flags, int, int]


def view(segment: Segment) -> SegmentView:
    """A segment as the figure draws it: SEQ, ACK (only with the ACK bit) and CTL."""
    if Flags.ACK in segment.flags:
        return (segment.flags, segment.seq, segment.ack)
    return (segment.flags, segment.seq)


def emitted(outputs: tuple[Output, ...]) -> list[Segment]:
    return [o.segment for o in outputs if isinstance(o, Emit)]


def signals(outputs: tuple[Output, ...]) -> list[Reply]:
    return [o.reply for o in outputs if isinstance(o, Signal)]


@dataclass
class Peer:
    """One endpoint of a figure, and everything its last event produced."""

    name: str
    tcb: Tcb
    out: tuple[Output, ...] = field(default=())

    @property
    def state(self) -> State:
        return self.tcb.state

    def do(self, event: Event) -> Peer:
        self.tcb, self.out = step(self.tcb, event)
        return self

    def receives(self, segment: Segment) -> Peer:
        return self.do(SegmentArrives(segment))

    @property
    def sent(self) -> list[Segment]:
        """The segments emitted by the last event, as objects to hand to the peer."""
        return emitted(self.out)

    @property
    def only_segment(self) -> Segment:
        segments = self.sent
        assert len(segments) == 1, f"{self.name} emitted {[str(s) for s in segments]}"
        return segments[0]

    @property
    def signals(self) -> list[Reply]:
        return signals(self.out)


def line(
    number: int,
    a: Peer,
    b: Peer,
    states: tuple[State, State],
    actor: Peer | None = None,
    segments: tuple[SegmentView, ...] = (),
) -> None:
    """Figure line `number`: A and B are in `states`; `actor`'s last event emitted
    exactly `segments` (nothing is checked about emissions when `actor` is None)."""
    got: dict[str, object] = {"line": number, "A": a.state, "B": b.state}
    want: dict[str, object] = {"line": number, "A": states[0], "B": states[1]}
    if actor is not None:
        got[f"{actor.name} emitted"] = tuple(view(s) for s in actor.sent)
        want[f"{actor.name} emitted"] = segments
    detail = f"figure line {number}: A is {a.state}, B is {b.state}"
    if actor is not None:
        detail += f"; {actor.name} emitted [{', '.join(str(s) for s in actor.sent)}]"
    assert got == want, detail


def synchronized_pair(cfg: Config = RFC9293) -> tuple[Peer, Peer]:
    """A and B ESTABLISHED with A at SND.NXT=100 and B at SND.NXT=300.

    Driven through a real three-way handshake (A active with ISS 99, B
    passive with ISS 299), so both TCBs are the model's own.
    """
    a = Peer("A", closed(cfg))
    b = Peer("B", closed(cfg, iss_pool=(299,)))
    b.do(OpenCall(active=False))
    a.do(OpenCall(active=True, iss=99))
    b.receives(a.only_segment)
    a.receives(b.only_segment)
    b.receives(a.only_segment)
    assert (a.state, b.state) == (ESTABLISHED, ESTABLISHED)
    assert (a.tcb.snd_nxt, a.tcb.rcv_nxt) == (100, 300)
    assert (b.tcb.snd_nxt, b.tcb.rcv_nxt) == (300, 100)
    return a, b


# ---------------------------------------------------------------- figures


def test_figure_6_basic_three_way_handshake() -> None:
    """Figure 6: Basic Three-Way Handshake for Connection Synchronization."""
    a = Peer("A", closed(RFC9293))
    b = Peer("B", closed(RFC9293, iss_pool=(300,)))

    # 1.  CLOSED                                               LISTEN
    b.do(OpenCall(active=False))
    line(1, a, b, (CLOSED, LISTEN), b, ())

    # 2.  SYN-SENT    --> <SEQ=100><CTL=SYN>               --> SYN-RECEIVED
    a.do(OpenCall(active=True, iss=100))
    line(2, a, b, (SYN_SENT, LISTEN), a, ((SYN, 100),))
    b.receives(a.only_segment)
    # B's answer is line 3's segment.
    line(2, a, b, (SYN_SENT, SYN_RECEIVED), b, ((SYN_ACK, 300, 101),))

    # 3.  ESTABLISHED <-- <SEQ=300><ACK=101><CTL=SYN,ACK>  <-- SYN-RECEIVED
    a.receives(b.only_segment)
    # A's answer is line 4's segment.
    line(3, a, b, (ESTABLISHED, SYN_RECEIVED), a, ((ACK, 101, 301),))

    # 4.  ESTABLISHED --> <SEQ=101><ACK=301><CTL=ACK>       --> ESTABLISHED
    b.receives(a.only_segment)
    line(4, a, b, (ESTABLISHED, ESTABLISHED), b, ())

    # 5.  ESTABLISHED --> <SEQ=101><ACK=301><CTL=ACK><DATA> --> ESTABLISHED
    data = b"data"  # one segment: within the default MSS and B's window
    a.do(SendCall(data))
    line(5, a, b, (ESTABLISHED, ESTABLISHED), a, ((ACK, 101, 301),))
    assert a.only_segment.payload == data
    b.receives(a.only_segment)
    # B acknowledges the text (not drawn in the figure) and stays ESTABLISHED.
    line(5, a, b, (ESTABLISHED, ESTABLISHED), b, ((ACK, 301, 101 + len(data)),))
    b.do(ReceiveCall())
    assert Deliver(data) in b.out


def test_figure_7_simultaneous_open() -> None:
    """Figure 7: Simultaneous Connection Synchronization."""
    a = Peer("A", closed(RFC9293))
    b = Peer("B", closed(RFC9293))

    # 1.  CLOSED                                           CLOSED
    line(1, a, b, (CLOSED, CLOSED))

    # 2.  SYN-SENT     --> <SEQ=100><CTL=SYN>              ...
    a.do(OpenCall(active=True, iss=100))
    line(2, a, b, (SYN_SENT, CLOSED), a, ((SYN, 100),))
    a_syn = a.only_segment  # delayed in the network until line 4

    # 3.  SYN-RECEIVED <-- <SEQ=300><CTL=SYN>              <-- SYN-SENT
    b.do(OpenCall(active=True, iss=300))
    line(3, a, b, (SYN_SENT, SYN_SENT), b, ((SYN, 300),))
    a.receives(b.only_segment)
    # A's answer is line 5's segment; the figure draws its departure after line 4.
    line(3, a, b, (SYN_RECEIVED, SYN_SENT), a, ((SYN_ACK, 100, 301),))
    a_syn_ack = a.only_segment  # delayed in the network until line 7

    # 4.               ... <SEQ=100><CTL=SYN>              --> SYN-RECEIVED
    b.receives(a_syn)
    # B's answer is line 6's segment.
    line(4, a, b, (SYN_RECEIVED, SYN_RECEIVED), b, ((SYN_ACK, 300, 101),))

    # 5.  SYN-RECEIVED --> <SEQ=100><ACK=301><CTL=SYN,ACK> ...
    # (emitted on line 3, see above; still in the network)
    assert view(a_syn_ack) == (SYN_ACK, 100, 301)

    # 6.  ESTABLISHED  <-- <SEQ=300><ACK=101><CTL=SYN,ACK> <-- SYN-RECEIVED
    a.receives(b.only_segment)
    line(6, a, b, (ESTABLISHED, SYN_RECEIVED), a, ())

    # 7.               ... <SEQ=100><ACK=301><CTL=SYN,ACK> --> ESTABLISHED
    b.receives(a_syn_ack)
    line(7, a, b, (ESTABLISHED, ESTABLISHED), b, ())


def test_figure_8_recovery_from_old_duplicate_syn() -> None:
    """Figure 8: Recovery from Old Duplicate SYN."""
    a = Peer("A", closed(RFC9293))
    b = Peer("B", closed(RFC9293, iss_pool=(300, 400)))

    # 1.  CLOSED                                               LISTEN
    b.do(OpenCall(active=False))
    line(1, a, b, (CLOSED, LISTEN), b, ())

    # 2.  SYN-SENT    --> <SEQ=100><CTL=SYN>               ...
    a.do(OpenCall(active=True, iss=100))
    line(2, a, b, (SYN_SENT, LISTEN), a, ((SYN, 100),))
    a_syn = a.only_segment  # delayed in the network until line 6

    # 3.  (duplicate) ... <SEQ=90><CTL=SYN>               --> SYN-RECEIVED
    old_duplicate = Segment(SYN, 90, wnd=RFC9293.rcv_wnd)  # external: an earlier incarnation
    b.receives(old_duplicate)
    # B's answer is line 4's segment.
    line(3, a, b, (SYN_SENT, SYN_RECEIVED), b, ((SYN_ACK, 300, 91),))

    # 4.  SYN-SENT    <-- <SEQ=300><ACK=91><CTL=SYN,ACK>  <-- SYN-RECEIVED
    a.receives(b.only_segment)
    # "TCP Peer A detects that the ACK field is incorrect and returns a RST":
    # line 5's segment.
    line(4, a, b, (SYN_SENT, SYN_RECEIVED), a, ((RST, 91),))

    # 5.  SYN-SENT    --> <SEQ=91><CTL=RST>               --> LISTEN
    b.receives(a.only_segment)
    line(5, a, b, (SYN_SENT, LISTEN), b, ())
    assert b.signals == []  # passive OPEN: "The user need not be informed."

    # 6.              ... <SEQ=100><CTL=SYN>               --> SYN-RECEIVED
    b.receives(a_syn)
    # B's answer, with the ISN generator's next value, is line 7's segment.
    line(6, a, b, (SYN_SENT, SYN_RECEIVED), b, ((SYN_ACK, 400, 101),))

    # 7.  ESTABLISHED <-- <SEQ=400><ACK=101><CTL=SYN,ACK>  <-- SYN-RECEIVED
    a.receives(b.only_segment)
    # A's answer is line 8's segment.
    line(7, a, b, (ESTABLISHED, SYN_RECEIVED), a, ((ACK, 101, 401),))

    # 8.  ESTABLISHED --> <SEQ=101><ACK=401><CTL=ACK>      --> ESTABLISHED
    b.receives(a.only_segment)
    line(8, a, b, (ESTABLISHED, ESTABLISHED), b, ())


def test_figure_9_half_open_connection_discovery() -> None:
    """Figure 9: Half-Open Connection Discovery."""
    a, b = synchronized_pair()

    # 1.  (REBOOT)                              (send 300,receive 100)
    # A's TCP loses its memory: a fresh endpoint with no TCB.
    a = Peer("A", closed(RFC9293))
    assert (b.tcb.snd_nxt, b.tcb.rcv_nxt) == (300, 100)

    # 2.  CLOSED                                           ESTABLISHED
    line(2, a, b, (CLOSED, ESTABLISHED))

    # 3.  SYN-SENT --> <SEQ=400><CTL=SYN>              --> (??)
    a.do(OpenCall(active=True, iss=400))
    line(3, a, b, (SYN_SENT, ESTABLISHED), a, ((SYN, 400),))
    b.receives(a.only_segment)
    # Outside B's window: B answers with what it expects next (line 4's segment).
    line(3, a, b, (SYN_SENT, ESTABLISHED), b, ((ACK, 300, 100),))
    assert b.signals == []

    # 4.  (!!)     <-- <SEQ=300><ACK=100><CTL=ACK>     <-- ESTABLISHED
    a.receives(b.only_segment)
    # Not an ACK of anything A sent: A resets (line 5's segment).
    line(4, a, b, (SYN_SENT, ESTABLISHED), a, ((RST, 100),))

    # 5.  SYN-SENT --> <SEQ=100><CTL=RST>              --> (Abort!!)
    b.receives(a.only_segment)
    line(5, a, b, (SYN_SENT, CLOSED), b, ())
    assert b.signals == [Reply.CONNECTION_RESET]

    # 6.  SYN-SENT                                         CLOSED
    line(6, a, b, (SYN_SENT, CLOSED))

    # 7.  SYN-SENT --> <SEQ=400><CTL=SYN>              -->
    a.do(Timeout(TimerKind.RETRANSMISSION))
    line(7, a, b, (SYN_SENT, CLOSED), a, ((SYN, 400),))


def test_figure_10_active_side_causes_half_open_discovery() -> None:
    """Figure 10: Active Side Causes Half-Open Connection Discovery."""
    # <DATA=10> must fit one segment and the peer's window; the default Config
    # has MSS 4 and an 8-octet window, so both are enlarged (profile unchanged).
    cfg = RFC9293.with_(mss=16, rcv_wnd=16)
    _, b = synchronized_pair(cfg)

    # 1.  (REBOOT)                                  (send 300,receive 100)
    # A's TCP loses its memory: a fresh endpoint with no TCB.
    a = Peer("A", closed(cfg))
    assert (b.tcb.snd_nxt, b.tcb.rcv_nxt) == (300, 100)
    line(1, a, b, (CLOSED, ESTABLISHED))

    # 2.  (??)    <-- <SEQ=300><ACK=100><DATA=10><CTL=ACK> <-- ESTABLISHED
    data = b"0123456789"
    b.do(SendCall(data))
    line(2, a, b, (CLOSED, ESTABLISHED), b, ((ACK, 300, 100),))
    assert b.only_segment.payload == data
    a.receives(b.only_segment)
    # No such connection: A answers with a RST (line 3's segment) and has no TCB.
    line(2, a, b, (CLOSED, ESTABLISHED), a, ((RST, 100),))

    # 3.          --> <SEQ=100><CTL=RST>                   --> (ABORT!!)
    b.receives(a.only_segment)
    line(3, a, b, (CLOSED, CLOSED), b, ())
    assert b.signals == [Reply.CONNECTION_RESET]


def test_figure_11_old_duplicate_syn_resets_two_passive_sockets() -> None:
    """Figure 11: Old Duplicate SYN Initiates a Reset on Two Passive Sockets."""
    z, x = 90, 300  # the figure leaves Z and X symbolic
    a = Peer("A", closed(RFC9293, iss_pool=(100,)))
    b = Peer("B", closed(RFC9293, iss_pool=(x,)))

    # 1.  LISTEN                                        LISTEN
    a.do(OpenCall(active=False))
    b.do(OpenCall(active=False))
    line(1, a, b, (LISTEN, LISTEN), b, ())

    # 2.       ... <SEQ=Z><CTL=SYN>                -->  SYN-RECEIVED
    old_duplicate = Segment(SYN, z, wnd=RFC9293.rcv_wnd)  # external: an old duplicate
    b.receives(old_duplicate)
    # B's answer is line 3's segment.
    line(2, a, b, (LISTEN, SYN_RECEIVED), b, ((SYN_ACK, x, z + 1),))

    # 3.  (??) <-- <SEQ=X><ACK=Z+1><CTL=SYN,ACK>   <--  SYN-RECEIVED
    a.receives(b.only_segment)
    # The ACK is not acceptable: A resets (line 4's segment) and keeps listening.
    line(3, a, b, (LISTEN, SYN_RECEIVED), a, ((RST, z + 1),))
    assert a.signals == []

    # 4.       --> <SEQ=Z+1><CTL=RST>              -->  (return to LISTEN!)
    b.receives(a.only_segment)
    line(4, a, b, (LISTEN, LISTEN), b, ())
    assert b.signals == []  # back to LISTEN without informing the user

    # 5.  LISTEN                                        LISTEN
    line(5, a, b, (LISTEN, LISTEN))


def test_figure_12_normal_close() -> None:
    """Figure 12: Normal Close Sequence."""
    a, b = synchronized_pair()

    # 1.  ESTABLISHED                                          ESTABLISHED
    line(1, a, b, (ESTABLISHED, ESTABLISHED))

    # 2.  (Close)
    #     FIN-WAIT-1  --> <SEQ=100><ACK=300><CTL=FIN,ACK>  --> CLOSE-WAIT
    a.do(CloseCall())
    line(2, a, b, (FIN_WAIT_1, ESTABLISHED), a, ((FIN_ACK, 100, 300),))
    b.receives(a.only_segment)
    # B ACKs the FIN (line 3's segment) and tells its user the connection is closing.
    line(2, a, b, (FIN_WAIT_1, CLOSE_WAIT), b, ((ACK, 300, 101),))
    assert b.signals == [Reply.CONNECTION_CLOSING]

    # 3.  FIN-WAIT-2  <-- <SEQ=300><ACK=101><CTL=ACK>      <-- CLOSE-WAIT
    a.receives(b.only_segment)
    line(3, a, b, (FIN_WAIT_2, CLOSE_WAIT), a, ())

    # 4.                                                       (Close)
    #     TIME-WAIT   <-- <SEQ=300><ACK=101><CTL=FIN,ACK>  <-- LAST-ACK
    b.do(CloseCall())
    line(4, a, b, (FIN_WAIT_2, LAST_ACK), b, ((FIN_ACK, 300, 101),))
    a.receives(b.only_segment)
    # A ACKs B's FIN: line 5's segment.
    line(4, a, b, (TIME_WAIT, LAST_ACK), a, ((ACK, 101, 301),))
    assert a.signals == [Reply.CONNECTION_CLOSING]

    # 5.  TIME-WAIT   --> <SEQ=101><ACK=301><CTL=ACK>      --> CLOSED
    b.receives(a.only_segment)
    line(5, a, b, (TIME_WAIT, CLOSED), b, ())

    # 6.  (2 MSL)
    #     CLOSED
    a.do(Timeout(TimerKind.TIME_WAIT))
    line(6, a, b, (CLOSED, CLOSED), a, ())


def test_figure_13_simultaneous_close() -> None:
    """Figure 13: Simultaneous Close Sequence."""
    a, b = synchronized_pair()

    # 1.  ESTABLISHED                                          ESTABLISHED
    line(1, a, b, (ESTABLISHED, ESTABLISHED))

    # 2.  (Close)                                              (Close)
    #     FIN-WAIT-1  --> <SEQ=100><ACK=300><CTL=FIN,ACK>  ... FIN-WAIT-1
    #                 <-- <SEQ=300><ACK=100><CTL=FIN,ACK>  <--
    #                 ... <SEQ=100><ACK=300><CTL=FIN,ACK>  -->
    a.do(CloseCall())
    line(2, a, b, (FIN_WAIT_1, ESTABLISHED), a, ((FIN_ACK, 100, 300),))
    a_fin = a.only_segment
    # B closes before A's FIN arrives, so its FIN acknowledges only 100.
    b.do(CloseCall())
    line(2, a, b, (FIN_WAIT_1, FIN_WAIT_1), b, ((FIN_ACK, 300, 100),))
    b_fin = b.only_segment

    # 3.  CLOSING     --> <SEQ=101><ACK=301><CTL=ACK>      ... CLOSING
    #                 <-- <SEQ=301><ACK=101><CTL=ACK>      <--
    #                 ... <SEQ=101><ACK=301><CTL=ACK>      -->
    a.receives(b_fin)
    line(3, a, b, (CLOSING, FIN_WAIT_1), a, ((ACK, 101, 301),))
    assert a.signals == [Reply.CONNECTION_CLOSING]
    a_ack = a.only_segment
    b.receives(a_fin)
    line(3, a, b, (CLOSING, CLOSING), b, ((ACK, 301, 101),))
    assert b.signals == [Reply.CONNECTION_CLOSING]
    b_ack = b.only_segment

    # 4.  TIME-WAIT                                            TIME-WAIT
    a.receives(b_ack)
    line(4, a, b, (TIME_WAIT, CLOSING), a, ())
    b.receives(a_ack)
    line(4, a, b, (TIME_WAIT, TIME_WAIT), b, ())

    #     (2 MSL)                                              (2 MSL)
    #     CLOSED                                               CLOSED
    a.do(Timeout(TimerKind.TIME_WAIT))
    line(4, a, b, (CLOSED, TIME_WAIT), a, ())
    b.do(Timeout(TimerKind.TIME_WAIT))
    line(4, a, b, (CLOSED, CLOSED), b, ())
