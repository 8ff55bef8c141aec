"""Profiles (legitimate behaviours of real stacks) and variants (broken designs).

A `Config` is carried by every TCB, so `step(tcb, event)` needs nothing
else.  The default is the `rfc9293` profile with no variant.

Profiles change behaviour only where RFC 9293 leaves room for it, and each
difference names its source.  Variants are deliberately broken designs;
each is a single, small delta that the handlers consult at exactly one
place (grep for `Variant.` in model/ to see every use), so that the
property engines can show what the broken design gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Profile(Enum):
    """Where real stacks legitimately differ from the RFC 9293 text."""

    RFC9293 = "rfc9293"
    LINUX = "linux"
    RFC1337 = "rfc1337"

    @property
    def description(self) -> str:
        return PROFILE_DESCRIPTIONS[self]


PROFILE_DESCRIPTIONS = {
    Profile.RFC9293: "RFC 9293 section 3.10 as written, without the optional RFC 5961 mitigations",
    Profile.LINUX: (
        "Linux TCP: RFC 5961 challenge ACKs, RST in SYN-SENT reported as 'connection refused', "
        "new SYN accepted in TIME-WAIT (tcp_timewait_state_process), passive SYN-RECEIVED "
        "handled as a request socket (tcp_check_req)"
    ),
    Profile.RFC1337: (
        "RFC 9293 plus RFC 1337's fix for TIME-WAIT assassination: a RST in TIME-WAIT is "
        "ignored (Linux with net.ipv4.tcp_rfc1337=1)"
    ),
}

PROFILE_RULES: dict[Profile, tuple[tuple[str, str], ...]] = {
    Profile.RFC9293: (),
    Profile.RFC1337: (
        (
            "RST in TIME-WAIT: ignored, the 2 MSL wait runs on (RFC 9293 3.10.7.4 would "
            "enter CLOSED)",
            "RFC 1337 section 3 (fix TH1); Linux tcp_timewait_state_process() with "
            "net.ipv4.tcp_rfc1337=1",
        ),
    ),
    Profile.LINUX: (
        (
            "RST in a synchronized state: reset only if SEG.SEQ = RCV.NXT, challenge ACK if "
            "otherwise in window",
            "RFC 5961 section 3.2; RFC 9293 3.10.7.4 second step; Linux tcp_validate_incoming()",
        ),
        (
            "SYN in a synchronized state: challenge ACK, whatever its sequence number",
            "RFC 5961 section 4.2; RFC 9293 3.10.7.4 fourth step; Linux tcp_validate_incoming()",
        ),
        (
            "ACK outside [SND.UNA - min(MAX.SND.WND, octets of ours ACKed), SND.NXT]: discard "
            "and send an ACK (the SYN counts as acked only for an active open)",
            "RFC 5961 section 5.2 (MAY-12); Linux tcp_ack(): max_window = min(max_window, "
            "bytes_acked), an older ACK gets a challenge ACK",
        ),
        (
            "RST with an acceptable ACK in SYN-SENT signals 'connection refused' (ECONNREFUSED)",
            "Linux tcp_reset(): TCP_SYN_SENT -> ECONNREFUSED",
        ),
        (
            "ABORT (SO_LINGER 0) sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>",
            "Linux tcp_send_active_reset(): TCPHDR_ACK | TCPHDR_RST",
        ),
        (
            "SYN without ACK in TIME-WAIT with SEG.SEQ > RCV.NXT starts a new connection when "
            "a listener exists (ISS = SND.NXT + 65537); otherwise it is ACKed",
            "RFC 6191 (sequence-number form); Linux tcp_timewait_state_process() TCP_TW_SYN",
        ),
        (
            "SYN that also carries FIN in LISTEN: discarded without an answer",
            "Linux tcp_rcv_state_process(), TCP_LISTEN (SKB_DROP_REASON_TCP_FLAGS)",
        ),
        (
            "Passive SYN-RECEIVED (a request socket): a RST at RCV.NXT drops the request (back "
            "to LISTEN), elsewhere in the window it gets a challenge ACK; then SEG.ACK != ISS+1 "
            "is checked before the sequence number: the listener answers <SEQ=SEG.ACK><CTL=RST> "
            "and the request stays",
            "Linux tcp_check_req(); tcp_rcv_state_process() TCP_LISTEN rejects the ACK, "
            "tcp_v4_send_reset()",
        ),
        (
            "Passive SYN-RECEIVED: the sequence test is tcp_in_window(): SEG.SEQ = RCV.NXT "
            "passes whatever the length, so does a zero-length segment at RCV.NXT + RCV.WND; "
            "a failing segment gets an ACK unless it is a RST",
            "Linux tcp_check_req(), tcp_in_window(), send_ack of the request socket",
        ),
        (
            "Passive SYN-RECEIVED: a SYN with SEG.SEQ != IRS drops the request (back to "
            "LISTEN) and is answered with the reset built from the segment (as in CLOSED); a "
            "segment without ACK is then dropped silently",
            "Linux tcp_check_req() embryonic_reset, tcp_v4_send_reset()",
        ),
        (
            "Passive SYN-RECEIVED: a SYN,ACK with SEG.SEQ = IRS that reaches into the window "
            "(text or FIN) is answered by a challenge ACK and not taken (the model stays in "
            "SYN-RECEIVED; Linux has made the child socket, still in SYN-RECV)",
            "Linux tcp_check_req() cuts the SYN, the child's tcp_validate_incoming() sees th->syn",
        ),
        (
            "States other than TIME-WAIT: the sequence test is SEG.SEQ =< RCV.NXT + RCV.WND "
            "and SEG.SEQ + SEG.LEN >= RCV.NXT (the right edge included); text or FIN outside "
            "the window is then dropped with an ACK",
            "Linux tcp_sequence(); tcp_data_queue() out_of_window",
        ),
        (
            "A segment with none of ACK, RST, SYN is dropped before any check (no ACK), except "
            "in TIME-WAIT",
            "Linux tcp_rcv_established() / tcp_rcv_state_process(): SKB_DROP_REASON_TCP_FLAGS",
        ),
        (
            "The SYN check looks at the header's SYN bit, even when the SYN lies before RCV.NXT "
            "(a challenge ACK)",
            "Linux tcp_validate_incoming(): th->syn",
        ),
        (
            "SYN-SENT: text, FIN and URG on the SYN,ACK are not taken; only the SYN is ACKed",
            "Linux tcp_rcv_synsent_state_process() (no TCP Fast Open)",
        ),
        (
            "TIME-WAIT is a timewait socket: a zero-length segment or RST at RCV.NXT restarts "
            "the wait or ends it; any other non-RST segment gets the TIME-WAIT ACK; other RSTs "
            "are ignored",
            "Linux tcp_timewait_state_process() (TCP_TW_ACK, net.ipv4.tcp_rfc1337=0)",
        ),
        (
            "CLOSE-WAIT, CLOSING, LAST-ACK: a segment at or above RCV.NXT is not looked at for "
            "text or FIN, so a second FIN gets no ACK",
            "Linux tcp_rcv_state_process(): the peer's FIN is in, 'break' before tcp_data_queue()",
        ),
        (
            "CLOSE-WAIT, CLOSING, LAST-ACK: text from below RCV.NXT that reaches beyond it "
            "resets the connection and is answered with a RST",
            "Linux tcp_rcv_state_process(): RCV_SHUTDOWN, tcp_reset()",
        ),
        (
            "ABORT in CLOSING or LAST-ACK with text the user has not received sends the RST",
            "Linux tcp_close(): data_was_unread, tcp_send_active_reset() (RFC 2525 2.17)",
        ),
        (
            "SYN-RECEIVED after a simultaneous open: the peer's SYN,ACK completes the "
            "handshake and is answered with an ACK (its SYN lies below RCV.NXT)",
            "Linux tcp_validate_incoming() lets it pass; tcp_data_queue() sends a duplicate ACK",
        ),
        (
            "ESTABLISHED: a text segment with flags ACK at RCV.NXT and an unchanged window is "
            "taken even when its ACK is too old for RFC 5961 5.2; its ACK is the only answer",
            "Linux tcp_rcv_established() header prediction queues the text before tcp_ack()",
        ),
    ),
}


class Variant(Enum):
    """Deliberately broken designs, each a one-point delta on the specification."""

    TWO_WAY_HANDSHAKE = "two-way-handshake"
    NO_TIME_WAIT = "no-time-wait"
    UNCHECKED_SYNACK = "unchecked-synack"
    EARLY_CLOSE = "early-close"
    NO_HALF_CLOSE = "no-half-close"
    NO_GIVE_UP = "no-give-up"

    @property
    def description(self) -> str:
        return VARIANT_DESCRIPTIONS[self]


VARIANT_DESCRIPTIONS = {
    Variant.TWO_WAY_HANDSHAKE: (
        "LISTEN + SYN enters ESTABLISHED as soon as the SYN,ACK is sent (no third segment "
        "needed); an old duplicate SYN creates a connection"
    ),
    Variant.NO_TIME_WAIT: (
        "the active closer goes straight to CLOSED where it would enter TIME-WAIT; a "
        "retransmitted FIN meets RST and old segments reach the next incarnation"
    ),
    Variant.UNCHECKED_SYNACK: (
        "SYN-SENT accepts a SYN,ACK whatever its ACK number; an old SYN,ACK synchronizes "
        "the client to the wrong server ISN"
    ),
    Variant.EARLY_CLOSE: (
        "any acceptable ACK counts as the ACK of our FIN, so FIN-WAIT-1 and LAST-ACK are "
        "left before the FIN is acknowledged"
    ),
    Variant.NO_HALF_CLOSE: (
        "once its FIN is ACKed (FIN-WAIT-2) the active closer acknowledges but discards the "
        "peer's text, as if close() ended both directions; half-close data is lost"
    ),
    Variant.NO_GIVE_UP: (
        "the retransmission timer never gives up: SYN, SYN,ACK and FIN are retransmitted "
        "without bound instead of failing after tcp_syn_retries / tcp_synack_retries"
    ),
}


@dataclass(frozen=True, slots=True)
class Config:
    """Everything about an endpoint that is fixed for its lifetime.

    Retry counts are retransmissions after the first transmission, as in
    Linux's `tcp_syn_retries` (default 6; the seed articles say 5) and
    `tcp_synack_retries` (default 5).  `retries` bounds data and FIN
    retransmissions (Linux `tcp_retries2`, default 15).  `rcv_wnd` is
    the receive buffer (RCV.WND when it is empty), `mss` the largest text
    per segment.  `user_timeout` arms the USER TIMEOUT while data or a
    FIN is unacknowledged.
    """

    profile: Profile = Profile.RFC9293
    variant: Variant | None = None
    syn_retries: int = 6
    synack_retries: int = 5
    retries: int = 15
    rcv_wnd: int = 8
    mss: int = 4
    user_timeout: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.rcv_wnd <= 0xFFFF:
            # No window scaling (RFC 7323) in the model: RCV.WND is what SEG.WND can say.
            raise ValueError(f"rcv_wnd={self.rcv_wnd} must fit the 16-bit window field")
        if self.mss < 1:
            raise ValueError(f"mss={self.mss} must be at least 1")
        for name in ("syn_retries", "synack_retries", "retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must not be negative")

    def with_(self, **changes: object) -> Config:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def rfc5961(self) -> bool:
        """RFC 5961 challenge ACKs (the `linux` profile)."""
        return self.profile is Profile.LINUX

    @property
    def linux(self) -> bool:
        """Linux's own choices where RFC 9293 leaves room (the `linux` profile)."""
        return self.profile is Profile.LINUX

    @property
    def rfc1337(self) -> bool:
        """RST segments do not end TIME-WAIT (the `rfc1337` profile)."""
        return self.profile is Profile.RFC1337


DEFAULT_CONFIG = Config()
