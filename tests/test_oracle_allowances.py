"""Every RFC-allowed alternative the oracle accepts, both ways.

Each target here is the model (an in-process ModelTarget) altered in
exactly one way: it does what an RFC allows and the model does not (the
allowance must pass, labelled with its source), or it does nearly that but
wrongly (a near miss, which must stay a finding).  The factories also serve
`synack fuzz --target python:tests.test_oracle_allowances:FACTORY`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from synack.harness.fuzz import findings
from synack.harness.fuzz.fuzz import (
    Call,
    Example,
    Inject,
    Pick,
    Run,
    allowed_text,
    allowed_variations,
    run_example,
)
from synack.harness.fuzz.targets.base import CallName, Observation, Role, Target, Traits
from synack.harness.fuzz.targets.model import ModelTarget, fuzz_config
from synack.model.config import (
    ALLOWED_RULES,
    LATITUDE,
    PROFILE_RULES,
    RFC_ALLOWED,
    Config,
    Profile,
    rfc_allowed,
)
from synack.model.segment import Flags, Segment
from synack.model.seq import seq_add, seq_sub
from synack.model.tcb import Tcb, closed
from synack.model.types import SYNCHRONIZED, State

from .util import run_synack

SYN, ACK, FIN, RST = int(Flags.SYN), int(Flags.ACK), int(Flags.FIN), int(Flags.RST)
EXACT = Pick("exact")
RFC = fuzz_config(Profile.RFC9293)
LINUX = fuzz_config(Profile.LINUX)
ESTABLISH = (Inject(SYN, EXACT, EXACT), Inject(ACK, EXACT, EXACT))


def judged(target: Target, example: Example, cfg: Config = RFC) -> Run:
    return run_example(target, example, cfg)


def clean(run: Run) -> dict[str, int]:
    assert run.divergence is None, findings.chart(run)
    return allowed_variations(run)


def diverged(run: Run) -> None:
    assert run.divergence is not None, findings.chart(run)
    assert not allowed_variations(run)


# ------------------------------------------------------------ the targets


@dataclass
class Altered(ModelTarget):
    """The model with one alteration of what it sends after each event."""

    before: Tcb = field(default_factory=closed)
    arrived: Segment | None = None

    def _feed(self, event: object) -> None:
        self.before = self.tcb
        super()._feed(event)  # type: ignore[arg-type]

    def inject(self, segment: Segment) -> None:
        self.arrived = segment
        super().inject(segment)

    def collect(self, expect: int) -> Observation:
        seen = super().collect(expect)
        extra = self.alter(seen.segments)
        self.arrived = None
        return replace(seen, segments=extra)

    def alter(self, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
        return segments


@dataclass
class ChallengeAcks(Altered):
    """RFC 5961 3: a RST in the window but not at RCV.NXT gets a challenge ACK
    (`off` shifts the challenge ACK's acknowledgment number: a near miss)."""

    off: int = 0

    def alter(self, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
        if self.arrived is None or not self.arrived.rst or not self.off:
            return segments
        return tuple(replace(s, ack=seq_add(s.ack, self.off)) for s in segments)


def challenge_acks(profile: Profile) -> Target:
    return ChallengeAcks(
        fuzz_config(profile).with_(allowed=frozenset({"rst-challenge"})), name="challenge-acks"
    )


@dataclass
class Probes(Altered):
    """RFC 8985 7: with text in flight, each arriving segment first draws a tail-loss probe
    (the last sent octets again, at most MSS), before the model's answer.  `unsent`: the
    probe carries octets beyond SND.NXT instead (never sent: a near miss)."""

    unsent: bool = False

    def alter(self, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
        tcb = self.before
        if self.arrived is None or tcb.state not in SYNCHRONIZED or not tcb.syn_acked:
            return segments
        sent = tcb.snd_buf[: seq_sub(tcb.snd_nxt, tcb.snd_una) - tcb.fin_sent]
        if not sent:
            return segments
        tail = sent[-tcb.cfg.mss :]
        seq = seq_add(tcb.snd_una, len(sent) - len(tail))
        if self.unsent:
            seq, tail = tcb.snd_nxt, b"?" * len(tail)
        probe = Segment(Flags.ACK, seq, tcb.rcv_nxt, tcb.wnd_field, tail)
        return (probe, *segments)


def probes(profile: Profile) -> Target:
    return Probes(fuzz_config(profile), name="tail-loss-probes")


@dataclass
class DupAcks(Altered):
    """RFC 5681 4.2: a zero-length segment not at RCV.NXT gets one immediate duplicate ACK
    more (`off` shifts its acknowledgment number: a near miss)."""

    off: int = 0

    def alter(self, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
        seg, tcb = self.arrived, self.tcb
        if seg is None or self.before.state not in SYNCHRONIZED or tcb.state not in SYNCHRONIZED:
            return segments
        if seg.payload or seg.syn or seg.fin or seg.rst or seg.seq == self.before.rcv_nxt:
            return segments
        dup = Segment(Flags.ACK, tcb.snd_nxt, seq_add(tcb.rcv_nxt, self.off), tcb.wnd_field)
        return (*segments, dup)


def dup_acks(profile: Profile) -> Target:
    return DupAcks(fuzz_config(profile), name="out-of-order-dup-acks")


@dataclass
class AckShort(Altered):
    """Takes a SYN,ACK's text but acknowledges one octet less than it took (a near miss
    of the combined ACK)."""

    def alter(self, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
        seg = self.arrived
        if seg is None or not (seg.syn and seg.has_ack and seg.payload):
            return segments
        return tuple(replace(s, ack=seq_sub(s.ack, 1)) for s in segments)


# ------------------------------------------------------------ the classification


def test_one_classification_with_the_rules_and_their_sources() -> None:
    linux = {r.id: r for r in PROFILE_RULES[Profile.LINUX]}
    assert {i for i, r in linux.items() if r.rfc_allowed} == ALLOWED_RULES
    assert {"rst-challenge", "syn-challenge", "old-ack-challenge"} <= ALLOWED_RULES
    assert "tcp-sequence" not in RFC_ALLOWED and "synack-no-text" not in RFC_ALLOWED
    for rule in LATITUDE:
        assert RFC_ALLOWED[rule.id] == rule.rfc_allowed and "RFC" in rule.source
    assert "RFC 8985" in RFC_ALLOWED["tail-loss-probe"]
    assert "RFC 5681" in RFC_ALLOWED["out-of-order-dup-ack"]
    assert "3.10.7.3" in RFC_ALLOWED["combined-synack-ack"]
    assert rfc_allowed({"rst-challenge", "tail-loss-probe"})
    assert not rfc_allowed({"rst-challenge", "tcp-sequence"}) and not rfc_allowed(set())
    from synack.harness.fuzz.conformance import LINUX_RFC_ALLOWED as CONFORMANCE

    assert {i: RFC_ALLOWED[i] for i in ALLOWED_RULES} == CONFORMANCE
    with pytest.raises(ValueError, match="not an RFC-allowed rule"):
        RFC.with_(allowed=frozenset({"tcp-sequence"}))
    assert RFC.with_(allowed=frozenset({"rst-challenge"})).rule("rst-challenge")
    assert not RFC.rule("rst-challenge")


# ------------------------------------------------------------ RFC 5961 challenge ACKs

RST_IN_WINDOW = Example(Role.PASSIVE, 5000, 0, (*ESTABLISH, Inject(RST, Pick("window", 2), EXACT)))


def test_a_challenge_ack_is_an_rfc_allowed_variation_under_rfc9293() -> None:
    run = judged(challenge_acks(Profile.RFC9293), RST_IN_WINDOW)
    assert clean(run) == {"rst-challenge": 1}
    assert [s.flags for s in run.steps[3].observed.segments] == [Flags.ACK]
    assert run.steps[3].allowed == ("rst-challenge",)
    assert "RFC 5961 3" in allowed_text(allowed_variations(run))
    # The model as written resets: nothing to allow.
    assert clean(judged(ModelTarget(RFC), RST_IN_WINDOW)) == {}


def test_a_challenge_ack_with_the_wrong_ack_number_is_a_finding() -> None:
    target = ChallengeAcks(RFC.with_(allowed=frozenset({"rst-challenge"})), off=1)
    diverged(judged(target, RST_IN_WINDOW))
    diverged(judged(target, RST_IN_WINDOW, LINUX))


# ------------------------------------------------------------ combined SYN,ACK ACK

SYNACK_TEXT = Example(
    Role.ACTIVE, 7000, 0, (Inject(SYN | ACK, EXACT, EXACT, 4), Call(CallName.RECV, 4))
)


def test_one_ack_for_a_synack_with_text_is_allowed() -> None:
    # RFC 9293 3.10.7.3 as the model has it: one ACK covering the SYN and the text.
    run = judged(ModelTarget(RFC), SYNACK_TEXT)
    assert clean(run) == {}
    (ack,) = run.steps[1].observed.segments
    assert ack.ack == seq_add(7000, 5)
    # The linux profile takes no text from a SYN,ACK: a stack that takes it and sends the
    # combined ACK does what RFC 9293 allows.
    run = judged(ModelTarget(RFC), SYNACK_TEXT, LINUX)
    assert clean(run) == {"combined-synack-ack": 1}


def test_a_combined_ack_with_the_wrong_ack_number_is_a_finding() -> None:
    diverged(judged(AckShort(RFC), SYNACK_TEXT))
    diverged(judged(AckShort(RFC), SYNACK_TEXT, LINUX))


# ------------------------------------------------------------ tail-loss probes

IN_FLIGHT = Example(
    Role.PASSIVE,
    5000,
    0,
    (
        *ESTABLISH,
        Call(CallName.SEND, 12),
        Inject(ACK, EXACT, Pick("una")),
        Inject(ACK, EXACT, EXACT),
    ),
)


def test_a_tail_loss_probe_is_allowed() -> None:
    run = judged(probes(Profile.RFC9293), IN_FLIGHT)
    assert clean(run) == {"tail-loss-probe": 2}
    probe = run.steps[4].observed.segments[0]
    assert probe.payload and probe.seq != run.steps[3].observed.segments[0].seq
    assert clean(judged(probes(Profile.LINUX), IN_FLIGHT, LINUX)) == {"tail-loss-probe": 2}


def test_a_probe_of_text_never_sent_is_a_finding() -> None:
    diverged(judged(Probes(RFC, unsent=True), IN_FLIGHT))


# ------------------------------------------------------------ duplicate ACKs

OUT_OF_ORDER = Example(
    Role.PASSIVE,
    5000,
    0,
    (*ESTABLISH, Inject(ACK, Pick("window", 3), EXACT), Inject(ACK, Pick("future", 5), EXACT)),
)


def test_a_duplicate_ack_for_an_empty_out_of_order_segment_is_allowed() -> None:
    run = judged(dup_acks(Profile.RFC9293), OUT_OF_ORDER)
    # In the window: the model says nothing, the target one ACK; beyond it: a second ACK.
    assert [len(r.observed.segments) for r in run.steps[3:5]] == [1, 2]
    assert clean(run) == {"out-of-order-dup-ack": 2}


def test_a_duplicate_ack_with_the_wrong_ack_number_is_a_finding() -> None:
    diverged(judged(DupAcks(RFC, off=1), OUT_OF_ORDER))
    # At RCV.NXT the segment is in order: no duplicate ACK is allowed there.
    at_rcv_nxt = Example(Role.PASSIVE, 5000, 0, (*ESTABLISH, Inject(ACK, EXACT, EXACT)))

    @dataclass
    class Always(DupAcks):
        def alter(self, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
            if self.arrived is None or self.tcb.state is not State.ESTABLISHED:
                return segments
            tcb = self.tcb
            return (*segments, Segment(Flags.ACK, tcb.snd_nxt, tcb.rcv_nxt, tcb.wnd_field))

    diverged(judged(Always(RFC), at_rcv_nxt))


# ------------------------------------------------------------ through the CLI


def test_fuzz_cli_counts_no_finding_for_rfc_allowed_behaviour(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    done = run_synack(
        "fuzz", "--target", "python:tests.test_oracle_allowances:dup_acks", "--examples", "150",
        "--seed", "3", "--no-waits", "--out", str(tmp_path / "out"), "--db", str(tmp_path / "db"),
        "--json", str(report), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(report.read_text())["findings"] == []


def test_traits_do_not_widen_the_allowances() -> None:
    """A real stack's traits (windows learned) accept the same variations, and only them."""
    traits = Traits(False, True, False, True, False)
    run = judged(DupAcks(RFC, traits=traits), OUT_OF_ORDER)
    assert clean(run) == {"out-of-order-dup-ack": 2}
    diverged(judged(DupAcks(RFC, traits=traits, off=1), OUT_OF_ORDER))
