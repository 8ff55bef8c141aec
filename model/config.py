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


MAX_RCV_WND = 1 << 30
"""The largest receive buffer (RFC 7323's largest window)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One behaviour of a profile: where it departs from RFC 9293 as written, and why."""

    id: str  # what `Config.rule()` asks for; the model consults it at the rule's site
    behaviour: str
    source: str
    rfc_allowed: str = ""
    """Why RFC 9293 (or an RFC it defers to) permits this behaviour too, with the section;
    empty when it does not.  A target that such rules alone explain shows an RFC-allowed
    variation, never a finding (`RFC_ALLOWED`)."""


PROFILE_RULES: dict[Profile, tuple[Rule, ...]] = {
    Profile.RFC9293: (),
    Profile.RFC1337: (
        Rule(
            "time-wait-rst-ignored",
            "RST in TIME-WAIT: ignored, the 2 MSL wait runs on (RFC 9293 3.10.7.4 would "
            "enter CLOSED)",
            "RFC 1337 section 3 (fix TH1); Linux tcp_timewait_state_process() with "
            "net.ipv4.tcp_rfc1337=1",
        ),
    ),
    Profile.LINUX: (
        Rule(
            "rst-challenge",
            "RST in a synchronized state: reset only if SEG.SEQ = RCV.NXT, challenge ACK if "
            "otherwise in window",
            "RFC 5961 section 3.2; RFC 9293 3.10.7.4 second step; Linux tcp_validate_incoming()",
            "RFC 5961 3, recommended by RFC 9293 3.10.7.4",
        ),
        Rule(
            "syn-challenge",
            "SYN in a synchronized state: challenge ACK, whatever its sequence number",
            "RFC 5961 section 4.2; RFC 9293 3.10.7.4 fourth step; Linux tcp_validate_incoming()",
            "RFC 5961 4, recommended by RFC 9293 3.10.7.4",
        ),
        Rule(
            "old-ack-challenge",
            "ACK outside [SND.UNA - min(MAX.SND.WND, octets of ours ACKed), SND.NXT]: discard "
            "and send an ACK (the SYN counts as acked only for an active open)",
            "RFC 5961 section 5.2 (MAY-12); Linux tcp_ack(): max_window = min(max_window, "
            "bytes_acked), an older ACK gets a challenge ACK",
            "RFC 5961 5 (MAY-12)",
        ),
        Rule(
            "syn-sent-refused",
            "RST with an acceptable ACK in SYN-SENT signals 'connection refused' (ECONNREFUSED)",
            "Linux tcp_reset(): TCP_SYN_SENT -> ECONNREFUSED",
            "what the user is told is the implementation's choice of words",
        ),
        Rule(
            "abort-rst-ack",
            "ABORT (SO_LINGER 0) sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>",
            "Linux tcp_send_active_reset(): TCPHDR_ACK | TCPHDR_RST",
            "an ACK on the RST changes nothing (3.10.7.4 checks the RST first)",
        ),
        Rule(
            "time-wait-syn",
            "SYN without ACK in TIME-WAIT with SEG.SEQ > RCV.NXT starts a new connection when "
            "a listener exists (a passive connection, `listener_kept`; ISS = SND.NXT + 65537); "
            "otherwise it is ACKed",
            "RFC 6191 (sequence-number form); Linux tcp_timewait_state_process() TCP_TW_SYN",
            "MAY-2 (RFC 6191)",
        ),
        Rule(
            "listen-syn-fin",
            "SYN that also carries FIN in LISTEN: discarded without an answer",
            "Linux tcp_rcv_state_process(), TCP_LISTEN (SKB_DROP_REASON_TCP_FLAGS)",
        ),
        Rule(
            "request-socket",
            "Passive SYN-RECEIVED is a request socket: a RST at RCV.NXT drops the request "
            "(back to LISTEN), elsewhere in the window it gets a challenge ACK; then "
            "SEG.ACK != ISS+1 is checked before the sequence number (the listener answers "
            "<SEQ=SEG.ACK><CTL=RST> and the request stays); the sequence test is "
            "tcp_in_window() (SEG.SEQ = RCV.NXT passes whatever the length, so does a "
            "zero-length segment at RCV.NXT + RCV.WND), a failing segment gets an ACK unless "
            "it is a RST; a SYN with SEG.SEQ != IRS drops the request and is answered with "
            "the reset built from the segment; a segment without ACK is then dropped; a "
            "SYN,ACK at IRS reaching into the window makes the child socket (SYN-RECEIVED, our "
            "SYN acknowledged, from then on like the full socket of an active open) and gets "
            "a challenge ACK",
            "Linux tcp_check_req(), tcp_in_window(), send_ack and embryonic_reset of the "
            "request socket, tcp_v4_send_reset()",
        ),
        Rule(
            "retransmitted-syn",
            "Passive SYN-RECEIVED: the peer's SYN again (SEG.SEQ = IRS, no ACK, no RST) is "
            "answered with the SYN,ACK again, without counting as a retransmission",
            "Linux tcp_check_req() 'pure retransmitted SYN', inet_rtx_syn_ack()",
        ),
        Rule(
            "tcp-sequence",
            "States other than TIME-WAIT: the sequence test is SEG.SEQ =< RCV.NXT + RCV.WND "
            "and SEG.SEQ + SEG.LEN >= RCV.NXT (the right edge included); text or FIN outside "
            "the window is then dropped with an ACK",
            "Linux tcp_sequence(); tcp_data_queue() out_of_window",
        ),
        Rule(
            "tcp-sequence-queue",
            "While the receive queue holds unread text or the peer's unread FIN, a segment "
            "must also end within the window (a FIN may end one beyond it)",
            "Linux 6.17+ tcp_sequence(): 'only accept this packet if receive queue is empty'",
        ),
        Rule(
            "flagless-dropped",
            "A segment with none of ACK, RST, SYN is dropped before any check (no ACK), except "
            "in TIME-WAIT",
            "Linux tcp_rcv_established() / tcp_rcv_state_process(): SKB_DROP_REASON_TCP_FLAGS",
        ),
        Rule(
            "header-syn",
            "The SYN check looks at the header's SYN bit, even when the SYN lies before RCV.NXT "
            "(a challenge ACK)",
            "Linux tcp_validate_incoming(): th->syn",
        ),
        Rule(
            "synack-no-text",
            "SYN-SENT: text, FIN and URG on the SYN,ACK are not taken; only the SYN is ACKed",
            "Linux tcp_rcv_synsent_state_process() (no TCP Fast Open)",
        ),
        Rule(
            "timewait-socket",
            "TIME-WAIT is a timewait socket: a zero-length segment or RST at RCV.NXT restarts "
            "the wait or ends it; any other non-RST segment gets the TIME-WAIT ACK; other RSTs "
            "are ignored",
            "Linux tcp_timewait_state_process() (TCP_TW_ACK, net.ipv4.tcp_rfc1337=0)",
        ),
        Rule(
            "fin-received-ignores",
            "CLOSE-WAIT, CLOSING, LAST-ACK: a segment at or above RCV.NXT is not looked at for "
            "text or FIN, so a second FIN gets no ACK",
            "Linux tcp_rcv_state_process(): the peer's FIN is in, 'break' before tcp_data_queue()",
        ),
        Rule(
            "data-after-fin-resets",
            "CLOSE-WAIT, CLOSING, LAST-ACK: text from below RCV.NXT that reaches beyond it "
            "resets the connection and is answered with a RST",
            "Linux tcp_rcv_state_process(): RCV_SHUTDOWN, tcp_reset()",
        ),
        Rule(
            "reset-at-fin",
            "CLOSE-WAIT, CLOSING, LAST-ACK: a RST at RCV.NXT - 1 (the peer's FIN) resets, "
            "whatever the sequence test says",
            "Linux tcp_reset_check() in tcp_validate_incoming()",
        ),
        Rule(
            "closing-text-step",
            "CLOSING: a segment whose ACK does not cover our FIN goes on to the text step (a "
            "retransmitted FIN is ACKed); one that covers it enters TIME-WAIT silently",
            "Linux tcp_rcv_state_process(): TCP_CLOSING, tcp_time_wait() and 'goto consume'",
        ),
        Rule(
            "abort-unread-resets",
            "ABORT in CLOSING or LAST-ACK with text the user has not received sends the RST",
            "Linux tcp_close(): data_was_unread, tcp_send_active_reset() (RFC 2525 2.17)",
        ),
        Rule(
            "simultaneous-synack",
            "SYN-RECEIVED after a simultaneous open: the peer's SYN,ACK completes the "
            "handshake and is answered with an ACK (its SYN lies below RCV.NXT) if it carries "
            "nothing else and SEG.ACK = SND.NXT; otherwise its SYN bit gets a challenge ACK",
            "Linux tcp_validate_incoming() lets only that SYN,ACK pass; tcp_data_queue() sends "
            "a duplicate ACK",
        ),
        Rule(
            "simultaneous-ack-of-nothing",
            "SYN-RECEIVED after a simultaneous open: SEG.ACK = SND.UNA is acceptable; the "
            "connection is ESTABLISHED with its SYN still unacknowledged",
            "Linux tcp_rcv_state_process() TCP_SYN_RECV: tcp_ack() accepts SEG.ACK = SND.UNA",
        ),
        Rule(
            "retransmit-collapse",
            "A retransmission timeout resends the text in flight (up to MSS octets) with the "
            "FIN behind it in the same segment when it all fits",
            "Linux tcp_retransmit_skb(), tcp_retrans_try_collapse() "
            "(net.ipv4.tcp_retrans_collapse=1, the default)",
            "repacketizing on retransmission (3.8.1; RFC 9293 3.7.4)",
        ),
        Rule(
            "header-prediction",
            "ESTABLISHED: a text segment with flags ACK at RCV.NXT and an unchanged window may "
            "be taken even when its ACK is too old for RFC 5961 5.2; its ACK is then the only "
            "answer (`header_prediction`; otherwise the challenge ACK)",
            "Linux tcp_rcv_established() header prediction queues the text before tcp_ack() "
            "when sk_forward_alloc covers it",
        ),
    ),
}
RULE_IDS = {profile: frozenset(r.id for r in rules) for profile, rules in PROFILE_RULES.items()}

LATITUDE: tuple[Rule, ...] = (
    Rule(
        "combined-synack-ack",
        "SYN-SENT: the text or FIN on a SYN,ACK is taken and one ACK covers the SYN and it, "
        "where the profile takes no text from a SYN,ACK (linux synack-no-text) and ACKs the "
        "SYN alone; the rfc9293 model itself sends that one ACK",
        "RFC 9293 3.10.7.3 fifth step and 3.10.7.4 seventh step",
        "RFC 9293 3.10.7.3: the ACK of the SYN and of the text combined in one segment",
    ),
    Rule(
        "tail-loss-probe",
        "text already sent and not yet acknowledged is sent again before the retransmission "
        "timeout: a slice of [SND.UNA, SND.NXT) with its own octets, ACK = RCV.NXT",
        "RFC 8985 section 7 (Tail Loss Probe)",
        "RFC 8985 7: a tail-loss probe retransmits sent text before the RTO",
    ),
    Rule(
        "out-of-order-dup-ack",
        "a zero-length segment not at RCV.NXT (synchronized state) gets one more "
        "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> than the model sends",
        "RFC 9293 3.8.6.3; RFC 5681 section 4.2 (acknowledge out-of-order segments at once)",
        "RFC 5681 4.2 (RFC 9293 3.8.6.3): an immediate duplicate ACK for an out-of-order segment",
    ),
)
"""Latitude the fuzz oracle grants every target on top of the model: what the RFCs allow
and no profile models (each an id, what the target may do, its source, and its label)."""

RFC_ALLOWED: dict[str, str] = {
    rule.id: rule.rfc_allowed
    for rules in (*PROFILE_RULES.values(), LATITUDE)
    for rule in rules
    if rule.rfc_allowed
}
"""Every RFC-allowed behaviour by id (profile rules and oracle latitude) and its label: the
one classification that `synack fuzz` (any profile) and `synack conformance` share."""
ALLOWED_RULES: frozenset[str] = frozenset(
    rule.id for rules in PROFILE_RULES.values() for rule in rules if rule.rfc_allowed
)
"""The profile rules RFC 9293 permits too: `Config.allowed` may switch them on anywhere."""


def rfc_allowed(ids: frozenset[str] | set[str]) -> bool:
    """Whether RFC-allowed behaviours alone are named: a variation, never a finding."""
    return bool(ids) and all(i in RFC_ALLOWED for i in ids)


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
    FIN is unacknowledged.  `listener_kept`: the application still listens
    on the port of a passive connection, so that (in the linux profile) a new
    SYN hitting TIME-WAIT can start the next connection.  `header_prediction`
    (linux profile): whether tcp_rcv_established()'s fast path takes text
    before its ACK is checked; the kernel takes it only when the socket has
    receive memory reserved, which the fuzzer cannot see, so its oracle tries
    both for every text segment.  `disabled`: profile rules switched off (the
    fuzzer does this to tell which rule explains what a target did).  `allowed`:
    RFC-allowed rules of another profile switched on (`ALLOWED_RULES`; the fuzz oracle
    does this when a target takes an alternative the RFCs permit).
    """

    profile: Profile = Profile.RFC9293
    variant: Variant | None = None
    syn_retries: int = 6
    synack_retries: int = 5
    retries: int = 15
    rcv_wnd: int = 8
    mss: int = 4
    user_timeout: bool = False
    listener_kept: bool = True
    header_prediction: bool = True
    disabled: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0 <= self.rcv_wnd <= MAX_RCV_WND:
            # No window scaling (RFC 7323) in the model: SEG.WND says at most 65535 of it.
            raise ValueError(f"rcv_wnd={self.rcv_wnd} is not in 0..{MAX_RCV_WND}")
        if self.mss < 1:
            raise ValueError(f"mss={self.mss} must be at least 1")
        for name in ("syn_retries", "synack_retries", "retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must not be negative")
        unknown = self.disabled - RULE_IDS[self.profile]
        if unknown:
            raise ValueError(f"profile {self.profile.value} has no rule {sorted(unknown)[0]!r}")
        stray = self.allowed - ALLOWED_RULES
        if stray:
            raise ValueError(f"{sorted(stray)[0]!r} is not an RFC-allowed rule")

    def with_(self, **changes: object) -> Config:
        return replace(self, **changes)  # type: ignore[arg-type]

    def rule(self, rule_id: str) -> bool:
        """Whether the profile's rule `rule_id` (PROFILE_RULES) applies."""
        in_profile = rule_id in RULE_IDS[self.profile] or rule_id in self.allowed
        return in_profile and rule_id not in self.disabled


DEFAULT_CONFIG = Config()
