"""What an endpoint sends: the RFC's segment forms, segmentizing, and timers.

Handlers collect outputs in a local list `out`; the list never escapes
`step`, which returns it as a tuple, so the functions stay pure from the
caller's point of view.
"""

from __future__ import annotations

from dataclasses import replace

from .segment import Flags, Segment
from .seq import seq_add, seq_sub
from .tcb import Tcb, deleted
from .types import Emit, Output, State, TimerCancel, TimerKind, TimerSet

ACK = Flags.ACK
SYN_ACK = Flags.SYN | Flags.ACK
FIN_ACK = Flags.FIN | Flags.ACK
RST_ACK = Flags.RST | Flags.ACK

SENDING_STATES = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.LAST_ACK})
"""States in which queued text (and then the FIN) may still be segmentized."""


def emit(out: list[Output], segment: Segment) -> None:
    out.append(Emit(segment))


def ack_segment(tcb: Tcb) -> Segment:
    """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>."""
    return Segment(ACK, tcb.snd_nxt, tcb.rcv_nxt, tcb.wnd_field)


def syn_segment(tcb: Tcb) -> Segment:
    """<SEQ=ISS><CTL=SYN>."""
    return Segment(Flags.SYN, tcb.iss, 0, tcb.wnd_field)


def syn_ack_segment(tcb: Tcb) -> Segment:
    """<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>."""
    return Segment(SYN_ACK, tcb.iss, tcb.rcv_nxt, tcb.wnd_field)


def reset_for(seg: Segment) -> Segment:
    """The reset that makes itself acceptable to the sender of `seg` (3.10.7.1).

    With the ACK bit on: <SEQ=SEG.ACK><CTL=RST>; otherwise
    <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    """
    if seg.has_ack:
        return Segment(Flags.RST, seg.ack)
    return Segment(RST_ACK, 0, seq_add(seg.seq, seg.seg_len))


def abort_reset(tcb: Tcb) -> Segment:
    """The RST sent by ABORT (3.10.5): <SEQ=SND.NXT><CTL=RST>.

    The `linux` profile also sets ACK=RCV.NXT, as tcp_send_active_reset() does.
    """
    if tcb.cfg.rule("abort-rst-ack"):
        return Segment(RST_ACK, tcb.snd_nxt, tcb.rcv_nxt)
    return Segment(Flags.RST, tcb.snd_nxt)


# ---------------------------------------------------------------- timers


def arm(tcb: Tcb, kind: TimerKind, out: list[Output]) -> Tcb:
    """Arm or restart a timer."""
    out.append(TimerSet(kind))
    return tcb if kind in tcb.timers else tcb.with_timer(kind)


def disarm(tcb: Tcb, kind: TimerKind, out: list[Output]) -> Tcb:
    if kind not in tcb.timers:
        return tcb
    out.append(TimerCancel(kind))
    return tcb.without_timer(kind)


def disarm_all(tcb: Tcb, out: list[Output]) -> Tcb:
    for kind in sorted(tcb.timers, key=lambda k: k.value):
        tcb = disarm(tcb, kind, out)
    return tcb


def arm_retransmission(tcb: Tcb, out: list[Output]) -> Tcb:
    """Start the retransmission timer (and the user timeout, if configured)."""
    tcb = arm(tcb, TimerKind.RETRANSMISSION, out)
    if tcb.cfg.user_timeout and TimerKind.USER not in tcb.timers:
        tcb = arm(tcb, TimerKind.USER, out)
    return tcb


def disarm_retransmission(tcb: Tcb, out: list[Output]) -> Tcb:
    return disarm(disarm(tcb, TimerKind.RETRANSMISSION, out), TimerKind.USER, out)


def delete_tcb(tcb: Tcb, out: list[Output]) -> Tcb:
    """Delete the TCB and enter CLOSED: flush queues, stop every timer."""
    disarm_all(tcb, out)
    return deleted(tcb)


# ------------------------------------------------------- segmentizing


def transmit(tcb: Tcb, out: list[Output]) -> Tcb:
    """Send what the user queued, as far as the send window allows, then the FIN.

    Text goes out in segments of at most MSS octets with a piggybacked ACK
    (3.10.2).  The FIN follows once every queued octet has been
    segmentized (3.10.4: "Queue this until all preceding SENDs have been
    segmentized").  Returns the TCB with SND.NXT advanced.
    """
    if tcb.state not in SENDING_STATES:
        return tcb
    sent = False
    unsent = tcb.unsent
    while unsent:
        usable = tcb.snd_wnd - tcb.in_flight
        size = min(len(unsent), tcb.cfg.mss, usable)
        if size <= 0:
            break
        emit(out, Segment(ACK, tcb.snd_nxt, tcb.rcv_nxt, tcb.wnd_field, unsent[:size]))
        tcb = replace(tcb, snd_nxt=seq_add(tcb.snd_nxt, size))
        unsent = unsent[size:]
        sent = True
    if tcb.fin_queued and not tcb.fin_sent and not unsent:
        emit(out, Segment(FIN_ACK, tcb.snd_nxt, tcb.rcv_nxt, tcb.wnd_field))
        tcb = replace(tcb, snd_nxt=seq_add(tcb.snd_nxt, 1), fin_sent=True)
        sent = True
    # An unsent remainder behind a closed window keeps the timer running too:
    # its expiry sends a zero-window probe (MUST-36).
    if (sent or unsent) and TimerKind.RETRANSMISSION not in tcb.timers:
        tcb = arm_retransmission(tcb, out)
    return tcb


def front_of_queue(tcb: Tcb) -> Segment | None:
    """The segment at the front of the retransmission queue, rebuilt from the TCB."""
    if tcb.syn_unacked:
        return syn_segment(tcb) if tcb.state is State.SYN_SENT else syn_ack_segment(tcb)
    if tcb.in_flight > 0:
        text = tcb.snd_buf[: min(tcb.in_flight, tcb.cfg.mss)]
        fin_behind = tcb.fin_sent and not tcb.fin_acked and len(text) == tcb.in_flight
        flags = FIN_ACK if fin_behind and tcb.cfg.rule("retransmit-collapse") else ACK
        return Segment(flags, tcb.snd_una, tcb.rcv_nxt, tcb.wnd_field, text)
    if tcb.fin_sent and not tcb.fin_acked:
        return Segment(FIN_ACK, seq_sub(tcb.snd_nxt, 1), tcb.rcv_nxt, tcb.wnd_field)
    return None
