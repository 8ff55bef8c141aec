"""SEGMENT ARRIVES (RFC 9293 section 3.10.7), step by step.

The function for the synchronized and SYN-RECEIVED states runs the RFC's
eight steps in order; each step is a small function that returns the new
TCB, or `None` when the RFC says "drop the segment and return" (the
outputs already collected still stand).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .config import Variant
from .segment import Flags, Segment
from .sending import (
    ack_segment,
    arm,
    arm_retransmission,
    delete_tcb,
    disarm_all,
    disarm_retransmission,
    emit,
    reset_for,
    syn_ack_segment,
    transmit,
)
from .seq import acceptable, seq_add, seq_between, seq_gt, seq_le, seq_lt, seq_sub
from .tcb import Tcb, listening, rcv_window_end
from .types import (
    Deliver,
    Emit,
    Output,
    Reply,
    SegmentArrives,
    Signal,
    State,
    TimerKind,
)

S = State


def segment_arrives(tcb: Tcb, event: SegmentArrives, out: list[Output]) -> Tcb:
    seg = event.segment
    state = tcb.state
    if state is S.CLOSED:
        return closed_state(tcb, seg, out)
    if state is S.LISTEN:
        return listen_state(tcb, seg, out)
    if state is S.SYN_SENT:
        return syn_sent_state(tcb, seg, out)
    return other_states(tcb, seg, out)


# ------------------------------------------------------------ 3.10.7.1


def closed_state(tcb: Tcb, seg: Segment, out: list[Output]) -> Tcb:
    """3.10.7.1 CLOSED: discard; answer anything but a RST with an acceptable RST."""
    if not seg.rst:
        emit(out, reset_for(seg))
    return tcb


# ------------------------------------------------------------ 3.10.7.2


def listen_state(tcb: Tcb, seg: Segment, out: list[Output]) -> Tcb:
    """3.10.7.2 LISTEN: first RST, second ACK, third SYN, fourth anything else."""
    if seg.rst:
        return tcb
    if seg.has_ack:
        emit(out, Segment(Flags.RST, seg.ack))
        return tcb
    if not seg.syn:
        return tcb
    if seg.fin and tcb.cfg.rule("listen-syn-fin"):
        return tcb  # Linux tcp_rcv_state_process(): a SYN that also carries FIN is discarded
    iss, pool = tcb.take_iss()
    # RFC-AMBIGUITY: text and FIN carried by the SYN "should be queued for
    # processing later".  The model keeps no such queue: they stay
    # unacknowledged (RCV.NXT = SEG.SEQ+1) and the peer retransmits them
    # once the connection is synchronized, as Linux does without TFO.
    # SND.WND is taken from the SYN here already so that the two-way-handshake
    # variant can send; the RFC sets it again from the ACK in SYN-RECEIVED.
    new_state = S.ESTABLISHED if tcb.cfg.variant is Variant.TWO_WAY_HANDSHAKE else S.SYN_RECEIVED
    tcb = replace(
        tcb,
        state=new_state,
        iss_pool=pool,
        iss=iss,
        irs=seg.seq,
        rcv_nxt=seq_add(seg.seq, 1),
        rcv_up=seq_add(seg.seq, 1),
        snd_una=iss,
        syn_acked=False,
        snd_nxt=seq_add(iss, 1),
        snd_wnd=seg.wnd,
        max_snd_wnd=seg.wnd,
        snd_wl1=seg.seq,
        snd_wl2=iss,
    )
    emit(out, syn_ack_segment(tcb))
    return arm_retransmission(tcb, out)


# ------------------------------------------------------------ 3.10.7.3


def syn_sent_state(tcb: Tcb, seg: Segment, out: list[Output]) -> Tcb:
    """3.10.7.3 SYN-SENT: ACK, RST, (security), SYN, else drop."""
    # First, check the ACK bit.
    ack_ok = False
    if seg.has_ack:
        if tcb.cfg.variant is Variant.UNCHECKED_SYNACK:
            ack_ok = True  # the broken design: any ACK number is taken as ours
        elif seq_le(seg.ack, tcb.iss) or seq_gt(seg.ack, tcb.snd_nxt):
            if not seg.rst:
                emit(out, Segment(Flags.RST, seg.ack))
            return tcb
        else:
            ack_ok = seq_lt(tcb.snd_una, seg.ack) and seq_le(seg.ack, tcb.snd_nxt)
    # Second, check the RST bit.
    if seg.rst:
        if ack_ok:
            refused = (
                Reply.CONNECTION_REFUSED
                if tcb.cfg.rule("syn-sent-refused")
                else Reply.CONNECTION_RESET
            )
            out.append(Signal(refused))
            return delete_tcb(tcb, out)
        return tcb
    # Third, security/compartment: not modelled (see docs: out of scope).
    # Fourth, check the SYN bit.
    if not seg.syn:
        return tcb  # Fifth: neither SYN nor RST
    snd_una = (
        tcb.snd_nxt
        if ack_ok and tcb.cfg.variant is Variant.UNCHECKED_SYNACK
        else (seg.ack if seg.has_ack else tcb.snd_una)
    )
    tcb = replace(
        tcb,
        irs=seg.seq,
        rcv_nxt=seq_add(seg.seq, 1),
        rcv_up=seq_add(seg.seq, 1),
        snd_una=snd_una,
        syn_acked=snd_una != tcb.iss,
        # RFC-AMBIGUITY: the RFC sets SND.WND/WL1/WL2 only on the path to
        # SYN-RECEIVED; the path to ESTABLISHED needs them just as much.  We set
        # them on both (WL2 is SEG.ACK only if the ACK bit is on).
        snd_wnd=seg.wnd,
        max_snd_wnd=max(tcb.max_snd_wnd, seg.wnd),
        snd_wl1=seg.seq,
        snd_wl2=seg.ack if seg.has_ack else tcb.iss,
        retries=0,
    )
    if seq_gt(tcb.snd_una, tcb.iss):
        tcb = replace(tcb, state=S.ESTABLISHED)
        tcb = disarm_retransmission(tcb, out)
        # Linux (without TCP Fast Open) takes no text, FIN or URG from a SYN,ACK.
        text_or_controls = (bool(seg.payload) or seg.fin or seg.urg) and not tcb.cfg.rule(
            "synack-no-text"
        )
        if not text_or_controls:
            emit(out, ack_segment(tcb))
            return transmit(tcb, out)
        # "continue processing at the sixth step": the URG, text and FIN steps
        # acknowledge everything in one ACK (MUST-58), so no separate ACK here.
        body = _Idealized(seq_add(seg.seq, 1), seg.payload, seg.fin, seg.urg)
        tcb, _ = _text_and_fin(tcb, seg, _trim_to_window(tcb, body), out)
        return _finish(tcb, True, out)
    # Simultaneous open.
    # RFC-AMBIGUITY: "other controls or text ... queue them for processing after
    # the ESTABLISHED state has been reached".  As in LISTEN, the model keeps no
    # queue: they stay unacknowledged and are retransmitted by the peer.
    tcb = replace(tcb, state=S.SYN_RECEIVED)
    emit(out, syn_ack_segment(tcb))
    return arm_retransmission(tcb, out)


# ------------------------------------------------------------ 3.10.7.4


@dataclass(frozen=True, slots=True)
class _Idealized:
    """The segment trimmed to the window: "begins at RCV.NXT and does not exceed it"."""

    seq: int
    text: bytes
    fin: bool
    urg: bool
    syn: bool = False


def other_states(tcb: Tcb, seg: Segment, out: list[Output]) -> Tcb:
    """3.10.7.4 Other states (SYN-RECEIVED and the synchronized states)."""
    if tcb.state is S.TIME_WAIT and tcb.cfg.rule("time-wait-syn"):
        reborn = _linux_time_wait_syn(tcb, seg, out)
        if reborn is not None:
            return reborn
    if tcb.state is S.TIME_WAIT and tcb.cfg.rule("timewait-socket"):
        return _linux_time_wait(tcb, seg, out)
    if tcb.cfg.rule("request-socket") and tcb.state is S.SYN_RECEIVED and tcb.passive_open:
        handled = _linux_request_sock(tcb, seg, out)
        if isinstance(handled, Tcb):
            return handled
        body, ack_needed = handled, False
    else:
        if (
            tcb.cfg.rule("flagless-dropped")
            and tcb.state is not S.TIME_WAIT
            and not (seg.has_ack or seg.rst or seg.syn)
        ):
            return tcb  # Linux: dropped before any check (SKB_DROP_REASON_TCP_FLAGS)
        checked = _first_check_sequence(tcb, seg, out)
        if checked is None:
            return tcb
        body, ack_needed = checked
        after_rst = _second_check_rst(tcb, seg, out)
        if after_rst is None or after_rst is not tcb:
            return after_rst if after_rst is not None else tcb
        if tcb.cfg.rule("header-syn"):
            # Linux tests the header's SYN bit, even when the SYN lies before RCV.NXT.
            body = replace(body, syn=seg.syn and not _linux_synack_passes(tcb, seg))
        after_syn = _fourth_check_syn(tcb, body, out)
        if after_syn is not tcb:
            return after_syn if after_syn is not None else tcb
    acked = _fifth_check_ack(tcb, seg, out)
    if acked is None:
        return tcb
    tcb, stop = acked
    if stop:
        return tcb
    tcb, ack_more = _text_and_fin(tcb, seg, body, out)
    return _finish(tcb, ack_needed or ack_more, out)


def _finish(tcb: Tcb, ack_needed: bool, out: list[Output]) -> Tcb:
    """Send queued text/FIN, and one ACK for the whole segment if nothing carried it.

    Every segment transmit() sends carries ACK=RCV.NXT, so a separate ACK is
    owed only when it sent nothing (MUST-58: aggregate ACKs).
    """
    if tcb.state is S.CLOSED:
        return tcb
    before = len(out)
    tcb = transmit(tcb, out)
    carried = any(isinstance(o, Emit) for o in out[before:])
    if ack_needed and not carried:
        emit(out, ack_segment(tcb))
    return tcb


def _linux_time_wait_syn(tcb: Tcb, seg: Segment, out: list[Output]) -> Tcb | None:
    """Linux profile: a SYN (no ACK, no RST) above RCV.NXT hitting TIME-WAIT.

    tcp_timewait_state_process() returns TCP_TW_SYN and the listener, if
    any (a passive connection whose application still listens), handles the
    SYN with ISS = SND.NXT + 65535 + 2; with no listener the SYN is answered
    with the TIME-WAIT ACK.
    """
    if not (seg.syn and not seg.rst and not seg.has_ack and seq_gt(seg.seq, tcb.rcv_nxt)):
        return None
    if not (tcb.passive_open and tcb.cfg.listener_kept):
        emit(out, ack_segment(tcb))
        return tcb
    iss = seq_add(tcb.snd_nxt, 65537) or 1
    disarm_all(tcb, out)
    listener = replace(listening(tcb), iss_pool=(iss, *tcb.iss_pool))
    reborn = listen_state(listener, seg, out)
    return reborn


def _linux_time_wait(tcb: Tcb, seg: Segment, out: list[Output]) -> Tcb:
    """Linux profile: TIME-WAIT is a timewait socket (tcp_timewait_state_process()).

    A bare ACK (zero length) at RCV.NXT restarts the 2 MSL wait, a RST at
    RCV.NXT ends it (net.ipv4.tcp_rfc1337=0); any other segment but a RST is
    answered with the TIME-WAIT ACK, which restarts the wait if it carries
    an ACK; any other RST is ignored.
    """
    if seg.seq == tcb.rcv_nxt and (seg.seg_len == 0 or seg.rst):
        if seg.rst:
            return delete_tcb(tcb, out)
        return arm(tcb, TimerKind.TIME_WAIT, out)
    if seg.rst:
        return tcb
    emit(out, ack_segment(tcb))
    return arm(tcb, TimerKind.TIME_WAIT, out) if seg.has_ack else tcb


def _linux_request_sock(tcb: Tcb, seg: Segment, out: list[Output]) -> Tcb | _Idealized:
    """Linux profile: passive SYN-RECEIVED, a request socket (tcp_check_req()).

    Returns the TCB when the segment ends here, or the idealized segment
    when it completes the handshake (it then goes on at the fifth step).
    Linux's order differs from the RFC's: RST first (RFC 5961: reset only
    at RCV.NXT, challenge ACK elsewhere in the window), then the ACK number
    (before the sequence number), then the sequence test, then the SYN.
    """
    again = seg.syn and seg.seq == tcb.irs and not (seg.rst or seg.has_ack)
    if again and tcb.cfg.rule("retransmitted-syn"):
        # The peer retransmitted its SYN: the SYN,ACK goes again, as often as
        # the SYN comes (only tcp_invalid_ratelimit bounds it), and the
        # retransmission count is left alone (inet_rtx_syn_ack()).
        emit(out, syn_ack_segment(tcb))
        return arm(tcb, TimerKind.RETRANSMISSION, out)
    if seg.rst:
        if seg.seq == tcb.rcv_nxt:
            disarm_all(tcb, out)
            return listening(tcb)
        if _linux_in_window(tcb, seg):
            emit(out, ack_segment(tcb))  # RFC 5961 3.2 challenge ACK; the request stays
        return tcb
    if seg.has_ack and seg.ack != seq_add(tcb.iss, 1):
        emit(out, Segment(Flags.RST, seg.ack))  # from the listener; the request stays
        return tcb
    if not _linux_in_window(tcb, seg):
        emit(out, ack_segment(tcb))
        return tcb
    if seg.syn and seg.seq != tcb.irs:  # a SYN at IRS lies before the window: cut off
        emit(out, reset_for(seg))  # built from the segment, as in CLOSED
        disarm_all(tcb, out)
        return listening(tcb)
    if not seg.has_ack:
        return tcb
    if seg.syn:
        # The ACK made the child socket: a full socket, still in SYN-RECEIVED,
        # with our SYN acknowledged.  It sees the SYN bit in the header and
        # answers with a challenge ACK (tcp_validate_incoming()); from now on it
        # is handled like the full socket of an active open.
        emit(out, ack_segment(tcb))
        child = replace(tcb, passive_open=False, snd_una=seq_add(tcb.iss, 1), syn_acked=True)
        return replace(disarm_retransmission(child, out), retries=0)
    body = _Idealized(seg.seq, seg.payload, seg.fin, seg.urg)
    if seq_lt(body.seq, tcb.rcv_nxt):
        body = _trim_front(body, seq_sub(tcb.rcv_nxt, body.seq))
    return _trim_to_window(tcb, body)


def _linux_in_window(tcb: Tcb, seg: Segment) -> bool:
    """Linux tcp_in_window(): the request socket's sequence test.

    A segment starting at RCV.NXT is acceptable whatever its length (and
    the window), as is a zero-length one at RCV.NXT + RCV.WND.
    """
    start, end = tcb.rcv_nxt, rcv_window_end(tcb)
    last = seq_add(seg.seq, seg.seg_len)
    if seg.seq == start:
        return True
    if seq_gt(last, start) and seq_lt(seg.seq, end):
        return True
    return seg.seq == end and last == end


def _first_check_sequence(
    tcb: Tcb, seg: Segment, out: list[Output]
) -> tuple[_Idealized, bool] | None:
    """First, check sequence number: Table 6, then trim to the idealized segment.

    Returns the idealized segment and whether an ACK is owed, or None to drop.
    """
    wnd = tcb.rcv_wnd
    urg = seg.urg
    linux_test = tcb.cfg.rule("tcp-sequence") and tcb.state is not S.TIME_WAIT
    if not (
        _simultaneous_open_synack(tcb, seg)
        or _linux_reset_at_fin(tcb, seg)
        or (
            _linux_sequence_ok(tcb, seg)
            if linux_test
            else acceptable(tcb.rcv_nxt, wnd, seg.seq, seg.seg_len)
        )
    ):
        if wnd == 0 and seg.seq == tcb.rcv_nxt:
            # "special allowance should be made to accept valid ACKs, URGs, and
            # RSTs": process the header as a zero-length segment, drop the text
            # and FIN, and ACK to show the closed window.
            return _Idealized(seg.seq, b"", False, urg), True
        if not seg.rst:
            emit(out, ack_segment(tcb))
            if tcb.state is S.TIME_WAIT and seg.fin:
                # RFC-AMBIGUITY: a retransmitted FIN lies below RCV.NXT, so the
                # sequence test already rejects it here, and the TIME-WAIT rule
                # of the fifth step ("Acknowledge it, and restart the 2 MSL
                # timeout") is never reached.  We ACK it here and also restart
                # the 2 MSL timer, as the TIME-WAIT text intends (and Linux does).
                arm(tcb, TimerKind.TIME_WAIT, out)
        return None
    body = _Idealized(seg.seq, seg.payload, seg.fin, urg, seg.syn)
    if seq_lt(body.seq, tcb.rcv_nxt):
        body = _trim_front(body, seq_sub(tcb.rcv_nxt, body.seq))
    body = _trim_to_window(tcb, body)
    # Linux accepts a segment whose text lies wholly outside the window and
    # then drops the text with an ACK (tcp_data_queue(), out_of_window).
    if tcb.cfg.rule("simultaneous-synack") and _linux_synack_passes(tcb, seg):
        # Linux passes it (tcp_validate_incoming()), and tcp_data_queue()
        # then sees a segment wholly below RCV.NXT: a duplicate ACK.
        return body, True
    lost = (
        linux_test
        and bool(seg.payload or seg.fin)
        and not (body.text or body.fin)
        and not _linux_fin_received_ignores(tcb, seg)
    )
    return body, lost


def _linux_sequence_ok(tcb: Tcb, seg: Segment) -> bool:
    """Linux tcp_sequence(): SEG.SEQ =< RCV.NXT + RCV.WND and SEG.SEQ + SEG.LEN >= RCV.NXT.

    Unlike Table 6 it includes the right edge and any segment that reaches
    RCV.NXT; the text outside the window is dropped later, with an ACK.
    Since 6.17 a segment that ends beyond the window (a FIN may stick out by
    its one number) passes only while the receive queue is empty: no unread
    text and no unread FIN.
    """
    right, end = rcv_window_end(tcb), seq_add(seg.seq, seg.seg_len)
    queue_empty = not (tcb.rcv_buf or tcb.eof_queued) or not tcb.cfg.rule("tcp-sequence-queue")
    return (
        seq_le(seg.seq, right)
        and seq_le(tcb.rcv_nxt, end)
        and (queue_empty or seq_le(seq_sub(end, int(seg.fin)), right))
    )


def _linux_synack_passes(tcb: Tcb, seg: Segment) -> bool:
    """Linux tcp_validate_incoming(): the simultaneous-open SYN,ACK passes the SYN check
    only if it carries nothing else and SEG.ACK = SND.NXT."""
    return _simultaneous_open_synack(tcb, seg) and seg.seg_len == 1 and seg.ack == tcb.snd_nxt


def _simultaneous_open_synack(tcb: Tcb, seg: Segment) -> bool:
    """The peer's SYN,ACK reaching us in SYN-RECEIVED after a simultaneous open.

    RFC-AMBIGUITY: its SYN is the one we already received (SEG.SEQ+1 =
    RCV.NXT), so Table 6 rejects the segment, yet Figure 7 line 6 shows it
    completing the handshake (Appendix A.2 admits that the validation rules
    cause "potential problems in conditions of simultaneous open").  We
    follow the figure: the old SYN is trimmed off and the ACK is processed;
    Linux's tcp_validate_incoming() makes the same exception in SYN-RECV.
    """
    return (
        tcb.state is S.SYN_RECEIVED
        and seg.syn
        and seg.has_ack
        and not seg.rst
        and seq_add(seg.seq, 1) == tcb.rcv_nxt
    )


def _trim_front(body: _Idealized, skip: int) -> _Idealized:
    """Drop the octets (SYN first, then text) that lie before RCV.NXT."""
    syn, text, seq = body.syn, body.text, body.seq
    if syn and skip:
        syn, skip, seq = False, skip - 1, seq_add(seq, 1)
    cut = min(skip, len(text))
    return replace(body, seq=seq_add(seq, cut), text=text[cut:], syn=syn)


def _trim_to_window(tcb: Tcb, body: _Idealized) -> _Idealized:
    """Drop the text and FIN that lie at or beyond RCV.NXT + RCV.WND."""
    end = rcv_window_end(tcb)
    room = seq_sub(end, body.seq) if seq_between(tcb.rcv_nxt, body.seq, end) else 0
    if len(body.text) > room:
        return replace(body, text=body.text[:room], fin=False)
    if body.fin and len(body.text) + body.syn >= room:
        return replace(body, fin=False)
    return body


def _second_check_rst(tcb: Tcb, seg: Segment, out: list[Output]) -> Tcb | None:
    """Second, check the RST bit.  Returns `tcb` itself to continue."""
    if not seg.rst:
        return tcb
    if tcb.state is S.TIME_WAIT and tcb.cfg.rule("time-wait-rst-ignored"):
        return None  # RFC 1337: a RST must not assassinate TIME-WAIT
    if (
        tcb.cfg.rule("rst-challenge")
        and seg.seq != tcb.rcv_nxt
        and not _linux_reset_at_fin(tcb, seg)
    ):
        emit(out, ack_segment(tcb))  # RFC 5961 3.2: challenge ACK
        return None
    state = tcb.state
    if state is S.SYN_RECEIVED:
        if tcb.passive_open:
            disarm_all(tcb, out)
            return listening(tcb)  # "The user need not be informed."
        out.append(Signal(Reply.CONNECTION_REFUSED))
        return delete_tcb(tcb, out)
    if state in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT):
        out.append(Signal(Reply.CONNECTION_RESET))
    return delete_tcb(tcb, out)


def _fourth_check_syn(tcb: Tcb, body: _Idealized, out: list[Output]) -> Tcb | None:
    """Fourth, check the SYN bit.  Returns `tcb` itself to continue."""
    if not body.syn:
        return tcb
    if tcb.state is S.SYN_RECEIVED and tcb.passive_open:
        disarm_all(tcb, out)
        return listening(tcb)
    if tcb.cfg.rule("syn-challenge"):
        emit(out, ack_segment(tcb))  # RFC 5961 4.2: challenge ACK
        return None
    # RFC 793 behaviour: a SYN in the window is an error.
    # RFC-AMBIGUITY: the form of this reset is not given; we send
    # <SEQ=SND.NXT><CTL=RST>, which lies in the window of a peer that is still
    # synchronized with us, and is ignored by a peer in SYN-SENT (no ACK bit).
    emit(out, Segment(Flags.RST, tcb.snd_nxt))
    out.append(Signal(Reply.CONNECTION_RESET))
    return delete_tcb(tcb, out)


def _fifth_check_ack(tcb: Tcb, seg: Segment, out: list[Output]) -> tuple[Tcb, bool] | None:
    """Fifth, check the ACK field.  Returns (tcb, stop) or None to drop."""
    if not seg.has_ack:
        return None
    if tcb.state is S.SYN_RECEIVED:
        if not (_synack_acked(tcb, seg.ack) and seq_le(seg.ack, tcb.snd_nxt)):
            emit(out, Segment(Flags.RST, seg.ack))
            return None
        # RFC-AMBIGUITY: the RFC sets only the window variables here; SND.UNA is
        # advanced by the ESTABLISHED processing we "continue" with.
        tcb = replace(
            tcb,
            state=S.FIN_WAIT_1 if tcb.fin_sent or tcb.fin_queued else S.ESTABLISHED,
            snd_wnd=seg.wnd,
            max_snd_wnd=max(tcb.max_snd_wnd, seg.wnd),
            snd_wl1=seg.seq,
            snd_wl2=seg.ack,
        )
    elif tcb.cfg.rule("old-ack-challenge") and not (
        seq_le(seq_sub(tcb.snd_una, _old_ack_allowance(tcb)), seg.ack)
        and seq_le(seg.ack, tcb.snd_nxt)
    ):
        if _linux_fast_path(tcb, seg):
            # Header prediction takes the text first; the ACK for it is the
            # only answer the old ACK gets.
            return tcb, False
        emit(out, ack_segment(tcb))  # RFC 5961 5.2
        return None
    tcb, dropped = _established_ack(tcb, seg, out)
    if dropped:
        return None
    return _ack_per_state(tcb, out)


def _synack_acked(tcb: Tcb, ack: int) -> bool:
    """SND.UNA < SEG.ACK, the SYN-RECEIVED test; or SND.UNA =< SEG.ACK in the linux
    profile after a simultaneous open: the full socket's tcp_ack() takes an ACK of
    nothing new (SEG.ACK = ISS), and the connection is ESTABLISHED with its SYN
    still unacknowledged."""
    if tcb.cfg.rule("simultaneous-ack-of-nothing") and not tcb.passive_open:
        return seq_le(tcb.snd_una, ack)
    return seq_lt(tcb.snd_una, ack)


def _linux_fast_path(tcb: Tcb, seg: Segment) -> bool:
    """Linux tcp_rcv_established() header prediction for a text segment.

    Flags ACK (PSH aside), SEG.SEQ = RCV.NXT, SEG.ACK not beyond SND.NXT,
    the window unchanged: the text is queued before tcp_ack() looks at the
    ACK, so a too-old ACK does not stop it.
    """
    return (
        tcb.cfg.rule("header-prediction")
        and tcb.cfg.header_prediction
        and tcb.state is S.ESTABLISHED
        and seg.bits & ~int(Flags.PSH) == int(Flags.ACK)
        and seg.seq == tcb.rcv_nxt
        and bool(seg.payload)
        and seq_le(seg.ack, tcb.snd_nxt)
        and seg.wnd == tcb.snd_wnd
    )


def _old_ack_allowance(tcb: Tcb) -> int:
    """How far below SND.UNA an ACK may lie before it gets a challenge ACK.

    RFC 5961 5.2 says MAX.SND.WND; Linux's tcp_ack() takes the smaller of
    max_window and bytes_acked, the octets of ours acknowledged so far: the
    SYN counts for an active open, not for a passive one (the child socket
    starts with SND.UNA = ISS + 1), so a fresh passive connection challenges
    every ACK below SND.UNA.
    """
    acked = seq_sub(tcb.snd_una, tcb.iss) - tcb.passive_open
    return min(tcb.max_snd_wnd, acked)


def _established_ack(tcb: Tcb, seg: Segment, out: list[Output]) -> tuple[Tcb, bool]:
    """ESTABLISHED ACK processing: advance SND.UNA, update the send window."""
    ack = seg.ack
    if seq_lt(tcb.snd_una, ack) and seq_le(ack, tcb.snd_nxt):
        tcb = _advance_snd_una(tcb, ack, out)
    elif seq_gt(ack, tcb.snd_nxt):
        emit(out, ack_segment(tcb))
        return tcb, True
    if (
        seq_le(tcb.snd_una, ack)
        and seq_le(ack, tcb.snd_nxt)
        and (seq_lt(tcb.snd_wl1, seg.seq) or (tcb.snd_wl1 == seg.seq and seq_le(tcb.snd_wl2, ack)))
    ):
        tcb = replace(
            tcb,
            snd_wnd=seg.wnd,
            snd_wl1=seg.seq,
            snd_wl2=ack,
            max_snd_wnd=max(tcb.max_snd_wnd, seg.wnd),
        )
    return tcb, False


def _advance_snd_una(tcb: Tcb, ack: int, out: list[Output]) -> Tcb:
    """Remove what `ack` acknowledges from the retransmission queue."""
    newly = seq_sub(ack, tcb.snd_una)
    newly -= tcb.syn_unacked
    text_acked = min(newly, tcb.in_flight)
    tcb = replace(tcb, snd_una=ack, syn_acked=True, snd_buf=tcb.snd_buf[text_acked:], retries=0)
    if tcb.snd_una == tcb.snd_nxt and not tcb.unsent:
        return disarm_retransmission(tcb, out)
    return arm(tcb, TimerKind.RETRANSMISSION, out)


def _fin_counts_as_acked(tcb: Tcb) -> bool:
    if tcb.cfg.variant is Variant.EARLY_CLOSE:
        return tcb.fin_sent  # the broken design: any acceptable ACK will do
    return tcb.fin_acked


def _ack_per_state(tcb: Tcb, out: list[Output]) -> tuple[Tcb, bool]:
    """The per-state part of the fifth step.  Returns (tcb, stop)."""
    state = tcb.state
    if state is S.FIN_WAIT_1 and _fin_counts_as_acked(tcb):
        tcb = disarm_retransmission(replace(tcb, state=S.FIN_WAIT_2), out)
        # RFC-AMBIGUITY: "the user's CLOSE can be acknowledged" in FIN-WAIT-2;
        # we say "ok" once, on entering it.
        out.append(Signal(Reply.OK))
        return tcb, False
    if state is S.CLOSING:
        if _fin_counts_as_acked(tcb):
            return enter_time_wait(tcb, out), True
        # "otherwise, ignore the segment"; Linux instead goes on to the text
        # step (tcp_rcv_state_process()), which ACKs a retransmitted FIN.
        return tcb, not tcb.cfg.rule("closing-text-step")
    if state is S.LAST_ACK and _fin_counts_as_acked(tcb):
        return delete_tcb(tcb, out), True
    return tcb, False


def enter_time_wait(tcb: Tcb, out: list[Output], fin_to_ack: bool = False) -> Tcb:
    """Enter TIME-WAIT: start the time-wait timer, turn off the other timers.

    `fin_to_ack`: the peer's FIN that led here is still to be ACKed (the ACK
    is normally sent at the end of the segment's processing).
    """
    if tcb.cfg.variant is Variant.NO_TIME_WAIT:
        # The broken design: straight to CLOSED, ACKing the FIN on the way out.
        if fin_to_ack:
            emit(out, ack_segment(tcb))
        return delete_tcb(tcb, out)
    tcb = disarm_all(replace(tcb, state=S.TIME_WAIT, eof_queued=False), out)
    return arm(tcb, TimerKind.TIME_WAIT, out)


FIN_RECEIVED_LINUX = (S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK)


def _linux_reset_at_fin(tcb: Tcb, seg: Segment) -> bool:
    """Linux tcp_reset_check(): once the peer's FIN is in, a RST at RCV.NXT - 1 (the
    FIN's own number) resets, whatever the sequence test says."""
    return (
        tcb.cfg.rule("reset-at-fin")
        and seg.rst
        and tcb.state in FIN_RECEIVED_LINUX
        and seg.seq == seq_sub(tcb.rcv_nxt, 1)
    )


def _linux_fin_received_ignores(tcb: Tcb, seg: Segment) -> bool:
    return (
        tcb.cfg.rule("fin-received-ignores")
        and tcb.state in FIN_RECEIVED_LINUX
        and seq_le(tcb.rcv_nxt, seg.seq)
    )


def _text_and_fin(tcb: Tcb, seg: Segment, body: _Idealized, out: list[Output]) -> tuple[Tcb, bool]:
    """Sixth (URG), seventh (text) and eighth (FIN) steps.  Returns (tcb, ack owed)."""
    state = tcb.state
    receiving = state in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2)
    reading = tcb.recv_pending
    if body.urg and receiving:
        up = seq_add(seg.seq, seg.up)
        if seq_gt(up, tcb.rcv_up):
            tcb = replace(tcb, rcv_up=up)
            out.append(Signal(Reply.URGENT))
    if _linux_fin_received_ignores(tcb, seg):
        # Linux (tcp_rcv_state_process()): once the peer's FIN is in, a segment
        # at or above RCV.NXT is not looked at for text or FIN: no ACK.
        return tcb, False
    if (
        tcb.cfg.rule("data-after-fin-resets")
        and state in FIN_RECEIVED_LINUX
        and seq_gt(seq_add(seg.seq, len(seg.payload)), tcb.rcv_nxt)
    ):
        # ... and text beyond RCV.NXT after the FIN resets the connection
        # (RCV_SHUTDOWN: tcp_reset(), and the segment is answered with a RST).
        emit(out, reset_for(seg))
        out.append(Signal(Reply.CONNECTION_RESET))
        return delete_tcb(tcb, out), False
    if body.seq != tcb.rcv_nxt:
        # RFC-AMBIGUITY / SHLD-31: segments beginning above RCV.NXT "SHOULD be
        # held for later processing".  The model holds none: their text and FIN
        # are dropped and a duplicate ACK (MAY-13) tells the sender where the
        # hole is; retransmission repairs it.
        return tcb, bool(body.text) or body.fin
    ack_needed = False
    if body.text and state is S.FIN_WAIT_2 and tcb.cfg.variant is Variant.NO_HALF_CLOSE:
        # The broken design: the text is acknowledged but never reaches the user.
        tcb = replace(tcb, rcv_nxt=seq_add(tcb.rcv_nxt, len(body.text)))
        ack_needed = True
    elif body.text and receiving:
        tcb = replace(
            tcb,
            rcv_buf=tcb.rcv_buf + body.text,
            rcv_nxt=seq_add(tcb.rcv_nxt, len(body.text)),
        )
        ack_needed = True
        if tcb.recv_pending:
            out.append(Deliver(tcb.rcv_buf))
            tcb = replace(tcb, rcv_buf=b"", recv_pending=False)
    elif body.text:
        # CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: "Ignore the segment text."
        # RFC-AMBIGUITY: the text is ignored, but RCV.NXT does not cover it, so
        # the FIN behind it (if any) is not at RCV.NXT and is ignored as well.
        return tcb, False
    if body.fin:
        tcb = _eighth_check_fin(tcb, out, eof_read=reading)
        ack_needed = True
    return tcb, ack_needed


def _eighth_check_fin(tcb: Tcb, out: list[Output], eof_read: bool) -> Tcb:
    """Eighth, check the FIN bit.  `eof_read`: a RECEIVE was pending, so the
    application reads the end of the stream at once."""
    out.append(Signal(Reply.CONNECTION_CLOSING))
    tcb = replace(
        tcb,
        rcv_nxt=seq_add(tcb.rcv_nxt, 1),
        recv_pending=False,
        eof_queued=tcb.cfg.rule("tcp-sequence-queue") and not eof_read,
    )
    state = tcb.state
    if state in (S.SYN_RECEIVED, S.ESTABLISHED):
        return replace(tcb, state=S.CLOSE_WAIT)
    if state is S.FIN_WAIT_1:
        if tcb.fin_acked:
            return enter_time_wait(tcb, out, fin_to_ack=True)
        return replace(tcb, state=S.CLOSING)
    if state is S.FIN_WAIT_2:
        return enter_time_wait(tcb, out, fin_to_ack=True)
    if state is S.TIME_WAIT:
        return arm(tcb, TimerKind.TIME_WAIT, out)
    return tcb  # CLOSE-WAIT, CLOSING, LAST-ACK: remain
