"""The z3 transition relation: fidelity to `model.step`, refutations, agreement.

Fidelity: hypothesis picks a TCB in any of the eleven states (reached
through real events, then shifted so its sequence numbers sit near the
2**32 wrap) and any event; the encoding evaluated on those values must
give exactly the model's successor TCB and outputs (text compared by
length).  The only inputs it may decline are those outside its stated
domain, and there the model must really send more text segments than
the encoding unrolls.  The same runs on a grid of every claimed profile
and variant x RCV.WND 8, 65535, 70000, 2**20 x MSS 4, 1460 (SEG.WND is
clamped to 16 bits above 65535), and every configuration the encoding
does not cover is refused by name.

Refutation: every variant is refuted on the claim it breaks, with a
counterexample that replays in the Python model.  Agreement: for every
(claim, variant) pair the prover finds a violation exactly when the
explorer finds one of the catalogue property the claim belongs to.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.harness.prove import induction, relation, z3calls, z3step, z3tcb
from synack.harness.prove.invariants import LOCAL_CORE
from synack.harness.prove.z3step import OUTSIDE_DOMAIN, disagreement, evaluate_concrete
from synack.harness.prove.z3tcb import LOOP_BOUND
from synack.model import (
    AbortCall,
    CloseCall,
    Config,
    Emit,
    Event,
    Flags,
    OpenCall,
    Profile,
    ReceiveCall,
    Segment,
    SegmentArrives,
    SendCall,
    State,
    Tcb,
    Timeout,
    TimerKind,
    Variant,
    step,
)
from synack.model.config import PROFILE_RULES
from synack.model.seq import seq_add, seq_sub
from synack.model.types import EVENT_KINDS
from synack.properties.catalogue import get as catalogue_property

from .explored import explored
from .states import all_configs, one_of_each_state
from .test_totality import events_for

SLOW = pytest.mark.slow
SEQ_FIELDS = ("iss", "irs", "snd_una", "snd_nxt", "snd_wl1", "snd_wl2", "rcv_nxt", "rcv_up")
NEAR_WRAP = st.sampled_from(
    [0, (1 << 32) - 1, (1 << 32) - 3, (1 << 32) - 120, 1 << 31]
) | st.integers(0, (1 << 32) - 1)

STARTS = [(cfg, name, tcb) for cfg in all_configs() for name, tcb in one_of_each_state(cfg).items()]


def shifted(tcb: Tcb, k: int) -> Tcb:
    """The same TCB with every sequence number moved by k (the model is shift-invariant)."""
    changes: dict[str, object] = {f: seq_add(getattr(tcb, f), k) for f in SEQ_FIELDS}
    changes["iss_pool"] = tuple(seq_add(i, k) for i in tcb.iss_pool)
    return replace(tcb, **changes)  # type: ignore[arg-type]


@st.composite
def tcb_and_event(draw: st.DrawFn, kind: type | None = None) -> tuple[Tcb, Event]:
    _, _, start = draw(st.sampled_from(STARTS))
    tcb = shifted(start, draw(NEAR_WRAP))
    event = draw(events_for(tcb).filter(lambda e: kind is None or type(e) is kind))
    return tcb, event


def assert_faithful(tcb: Tcb, event: Event) -> None:
    problem = disagreement(tcb, event)
    if problem == OUTSIDE_DOMAIN:
        _, outputs = step(tcb, event)
        text_segments = [o for o in outputs if isinstance(o, Emit) and o.segment.payload]
        assert len(text_segments) > LOOP_BOUND, "the domain flag refused an input it covers"
        return
    assert problem is None, f"{tcb.describe()} / {event}: {problem}"


@pytest.mark.parametrize("kind", EVENT_KINDS, ids=lambda k: k.__name__)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_encoding_computes_the_models_successor(kind: type, data: st.DataObject) -> None:
    tcb, event = data.draw(tcb_and_event(kind))
    assert_faithful(tcb, event)


@settings(max_examples=100, deadline=None)
@given(tcb_and_event())
def test_encoding_follows_the_model_along_generated_segments(pair: tuple[Tcb, Event]) -> None:
    tcb, event = pair
    assert_faithful(tcb, event)
    if isinstance(event, SegmentArrives):
        after, _ = step(tcb, event)
        assert_faithful(after, event)  # the same segment again, from where it led


def _linux_starts() -> list[Tcb]:
    """A TCB in every state under linux (TIME-WAIT of a passive open too), and one step
    on (text, FIN, RECEIVE) from each."""
    starts = [tcb for cfg, _, tcb in STARTS if cfg.profile is Profile.LINUX]
    starts += [replace(t, passive_open=True) for t in starts if t.state is State.TIME_WAIT]
    more = []
    for tcb in starts:
        for event in (
            SegmentArrives(Segment(Flags.ACK, tcb.rcv_nxt, tcb.snd_nxt, tcb.snd_wnd, b"ab")),
            SegmentArrives(Segment(Flags.FIN | Flags.ACK, tcb.rcv_nxt, tcb.snd_nxt, tcb.snd_wnd)),
            ReceiveCall(),
        ):
            more.append(step(tcb, event)[0])
    return starts + more


PROBE_FLAGS = [
    Flags(0), Flags.ACK, Flags.SYN, Flags.SYN | Flags.ACK, Flags.FIN | Flags.ACK, Flags.RST,
    Flags.RST | Flags.ACK, Flags.RST | Flags.FIN, Flags.SYN | Flags.FIN, Flags.ACK | Flags.URG,
]  # fmt: skip


def _probe_events(tcb: Tcb) -> list[Event]:
    """Segments at the edges of the windows, and every call and timer."""
    nxt, wnd = tcb.rcv_nxt, tcb.rcv_wnd
    seqs = {tcb.irs, *(seq_add(nxt, d) for d in (-1, 0, 1, wnd - 1, wnd, wnd + 1))}
    acks = {tcb.iss, seq_sub(tcb.snd_una, 1), tcb.snd_una, tcb.snd_nxt, seq_add(tcb.snd_nxt, 1)}
    events: list[Event] = [SegmentArrives(Segment(f, q, a if f & Flags.ACK else 0, tcb.snd_wnd,
                                                  text, 1 if f & Flags.URG else 0))
                           for f in PROBE_FLAGS for q in sorted(seqs) for a in sorted(acks)
                           for text in (b"", b"xy")]  # fmt: skip
    events += [SendCall(b"ab"), ReceiveCall(), CloseCall(), AbortCall()]
    events += [Timeout(kind) for kind in TimerKind]
    return events


def _shifted_event(event: Event, k: int) -> Event:
    if not isinstance(event, SegmentArrives):
        return event
    seg = event.segment
    return SegmentArrives(replace(seg, seq=seq_add(seg.seq, k), ack=seq_add(seg.ack, k)))


def _without(tcb: Tcb, rule: str) -> Tcb:
    return replace(tcb, cfg=tcb.cfg.with_(disabled=frozenset({rule})))


@functools.cache
def _decided_by() -> dict[str, list[tuple[Tcb, Event]]]:
    """For each linux rule, the first two probe inputs (with the rule off) whose step it
    decides."""
    found: dict[str, list[tuple[Tcb, Event]]] = {r.id: [] for r in PROFILE_RULES[Profile.LINUX]}
    for tcb in _linux_starts():
        for event in _probe_events(tcb):
            on = step(tcb, event)
            for rule, inputs in found.items():
                if len(inputs) >= 2:
                    continue  # two inputs per rule are checked
                off = _without(tcb, rule)
                off_tcb, off_out = step(off, event)
                if (replace(off_tcb, cfg=tcb.cfg), off_out) != on:
                    inputs.append((off, event))
    return found


@pytest.mark.parametrize("rule", [r.id for r in PROFILE_RULES[Profile.LINUX]])
def test_encoding_follows_each_linux_rule_switch(rule: str) -> None:
    """The fuzzer switches linux rules off one at a time to name the one that explains
    a finding.  For every rule: some probe input is decided by it, and on such inputs
    the encoding with the rule off still computes the model's successor."""
    mattering = _decided_by()[rule]
    assert mattering, f"no probe input is decided by rule {rule}"
    assert_faithful(*mattering[0])
    off, event = mattering[-1]
    assert_faithful(shifted(off, (1 << 32) - 3), _shifted_event(event, (1 << 32) - 3))


# ------------------------------------------- windows, MSS, configurations

WINDOWS = (8, 65535, 70000, 1 << 20)
"""RCV.WND values: the proofs', the largest SEG.WND, and two that SEG.WND must clamp."""
MSS_VALUES = (4, 1460)


def claimed_configs() -> list[Config]:
    """Every profile and variant the encoding claims (`z3tcb.ENCODED_*`), and its flags."""
    base = all_configs()
    linux = base[0].with_(profile=Profile.LINUX)
    return [*base, linux.with_(listener_kept=False), linux.with_(header_prediction=False)]


def config_id(cfg: Config) -> str:
    flags = [cfg.variant.value if cfg.variant else cfg.profile.value]
    flags += [name for name in ("user_timeout",) if getattr(cfg, name)]
    flags += [
        f"no-{name}" for name in ("listener_kept", "header_prediction") if not getattr(cfg, name)
    ]
    return "+".join(flags)


GRID_CONFIGS = [
    cfg.with_(rcv_wnd=w, mss=m) for cfg in claimed_configs() for w in WINDOWS for m in MSS_VALUES
]
GRID = [
    pytest.param(cfg, id=f"{config_id(cfg)}-wnd{cfg.rcv_wnd}-mss{cfg.mss}") for cfg in GRID_CONFIGS
]


@functools.cache
def grid_starts(cfg: Config) -> list[Tcb]:
    return list(one_of_each_state(cfg).values())


def grid_check(cfg: Config, data: st.DataObject) -> None:
    start = data.draw(st.sampled_from(grid_starts(cfg)))
    tcb = shifted(start, data.draw(NEAR_WRAP))
    assert_faithful(tcb, data.draw(events_for(tcb)))


@pytest.mark.parametrize("cfg", GRID)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_encoding_follows_the_model_at_every_window_and_mss(
    cfg: Config, data: st.DataObject
) -> None:
    """Every claimed configuration at every window and MSS, a few inputs each (the slow
    run takes many more)."""
    grid_check(cfg, data)


@SLOW
@pytest.mark.parametrize("cfg", GRID)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_encoding_follows_the_model_at_every_window_and_mss_deeply(
    cfg: Config, data: st.DataObject
) -> None:
    grid_check(cfg, data)


def _form_inputs(cfg: Config) -> list[tuple[str, Tcb, Event]]:
    """One input per form of segment that carries our window (sending.py, timeouts.py)."""
    s = one_of_each_state(cfg)
    est = s["established"]
    idle = s["established-passive"]  # nothing in flight; one octet queued, zero window
    unsent = replace(idle, snd_wnd=0, snd_buf=b"z").with_timer(TimerKind.RETRANSMISSION)
    return [
        ("syn", s["closed"], OpenCall(active=True)),
        ("syn-ack", s["listen"], SegmentArrives(Segment(Flags.SYN, 7, 0, 8))),
        ("ack", est, SegmentArrives(Segment(Flags.ACK, est.rcv_nxt, est.snd_nxt, 8, b"ab"))),
        ("text", est, SendCall(b"hello")),
        ("fin", est, CloseCall()),
        ("syn again", s["syn-sent"], Timeout(TimerKind.RETRANSMISSION)),
        ("syn-ack again", s["syn-received-passive"], Timeout(TimerKind.RETRANSMISSION)),
        ("text again", est, Timeout(TimerKind.RETRANSMISSION)),
        ("fin again", s["fin-wait-1"], Timeout(TimerKind.RETRANSMISSION)),
        ("probe", unsent, Timeout(TimerKind.RETRANSMISSION)),
    ]


@pytest.mark.parametrize("mss", MSS_VALUES)
@pytest.mark.parametrize("wnd", WINDOWS)
def test_every_segment_form_carries_the_clamped_window(wnd: int, mss: int) -> None:
    """SEG.WND is RCV.WND clamped to 16 bits in every form of segment we build (at
    70000 the encoding once sent 69998 where the model says 65535), in both profiles
    that build them differently."""
    for profile in (Profile.RFC9293, Profile.LINUX):
        cfg = Config(profile=profile, syn_retries=2, synack_retries=2, retries=2)
        for form, tcb, event in _form_inputs(cfg.with_(rcv_wnd=wnd, mss=mss)):
            after, outputs = step(tcb, event)
            sent = [o.segment for o in outputs if isinstance(o, Emit) and not o.segment.rst]
            assert sent, f"{form}: nothing sent"
            assert {seg.wnd for seg in sent} == {min(after.rcv_wnd, 0xFFFF)}, form
            if form == "probe":
                assert [len(seg.payload) for seg in sent] == [1]
            assert_faithful(tcb, event)


# -------------------------------------------------- what is not encoded


def test_every_claimed_configuration_is_accepted() -> None:
    """Both ways, first: what the fidelity tests cover, and what `synack prove` proves,
    is accepted (and steps)."""
    proof_configs = [relation.PROOF_CONFIG.with_(profile=p) for p in Profile]
    proof_configs += [relation.PROOF_CONFIG.with_(variant=v) for v in Variant]
    for cfg in [*proof_configs, *GRID_CONFIGS]:
        z3tcb.check_encoded(cfg)
    cfg = Config(profile=Profile.LINUX, rcv_wnd=1 << 30, mss=(1 << 32) - 1, retries=127)
    z3step.step(cfg, z3tcb.fresh_tcb("t"), z3step.SymEvent(CloseCall))


def test_the_encoding_consults_exactly_the_rules_it_claims() -> None:
    """`ENCODED_RULES` is read off the encoding's source, and covers every profile."""
    source = inspect.getsource(z3tcb) + inspect.getsource(z3step) + inspect.getsource(z3calls)
    consulted = set(re.findall(r'\.rule\(\s*"([a-z0-9-]+)"', source))
    assert consulted == z3tcb.ENCODED_RULES
    assert {r.id for rules in PROFILE_RULES.values() for r in rules} <= z3tcb.ENCODED_RULES


def _refusal(cfg: Config) -> str:
    with pytest.raises(z3tcb.UnencodedConfig) as refused:
        z3step.step(cfg, z3tcb.fresh_tcb("t"), z3step.SymEvent(CloseCall))
    return str(refused.value)


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"retries": 128}, "retries=128"),
        ({"syn_retries": 300}, "syn_retries=300"),
        ({"synack_retries": 1000}, "synack_retries=1000"),
        ({"mss": 1 << 32}, f"mss={1 << 32}"),
    ],
)
def test_an_unencoded_value_is_refused_by_name(changes: dict[str, int], shown: str) -> None:
    message = _refusal(Config().with_(**changes))
    assert shown in message and "z3 encoding does not cover" in message


def test_an_unencoded_window_is_refused() -> None:
    cfg = Config()
    object.__setattr__(cfg, "rcv_wnd", 1 << 31)  # past what Config itself allows
    assert f"rcv_wnd={1 << 31}" in _refusal(cfg)


def test_an_unencoded_variant_rule_or_field_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variant, a profile rule or a Config field the encoding does not know is refused,
    naming it; the configurations without it are still accepted."""
    monkeypatch.setattr(z3tcb, "ENCODED_VARIANTS", z3tcb.ENCODED_VARIANTS - {Variant.NO_GIVE_UP})
    assert "variant='no-give-up'" in _refusal(Config(variant=Variant.NO_GIVE_UP))
    z3tcb.check_encoded(Config(variant=Variant.EARLY_CLOSE))
    monkeypatch.setattr(z3tcb, "ENCODED_RULES", z3tcb.ENCODED_RULES - {"time-wait-syn"})
    message = _refusal(Config(profile=Profile.LINUX))
    assert "profile='linux'" in message and "'time-wait-syn'" in message
    z3tcb.check_encoded(Config(profile=Profile.LINUX, disabled=frozenset({"time-wait-syn"})))
    z3tcb.check_encoded(Config(profile=Profile.RFC1337))
    monkeypatch.setattr(z3tcb, "ENCODED_FIELDS", z3tcb.ENCODED_FIELDS - {"user_timeout"})
    assert "user_timeout=True" in _refusal(Config(user_timeout=True))
    z3tcb.check_encoded(Config())  # the field at its default: nothing to encode


def test_a_wrong_encoding_is_caught() -> None:
    """The comparison is not vacuous: an encoding of another design is told apart."""
    tcb = one_of_each_state(all_configs()[0])["syn-sent"]
    old_synack = SegmentArrives(Segment(Flags.SYN | Flags.ACK, 5000, seq_add(tcb.iss, 5), 8))
    assert disagreement(tcb, old_synack) is None
    model_after, _ = step(tcb, old_synack)
    unchecked = replace(tcb, cfg=tcb.cfg.with_(variant=Variant.UNCHECKED_SYNACK))
    encoded, _, _ = evaluate_concrete(unchecked, old_synack)
    assert model_after.state is State.SYN_SENT and encoded["state"] is State.ESTABLISHED


# ------------------------------------------------------------ refutation


def test_each_strengthening_clause_is_needed_where_its_cti_says() -> None:
    """Without the clause its CTI names, the obligation fails with that CTI; with it, holds."""
    ob = induction.Obligation("time-wait timeout", "property", "ack-before-close")
    full = tuple(c.name for c in LOCAL_CORE)
    weaker = tuple(n for n in full if n != "time-wait-timer-only-in-time-wait")
    deadline = time.time() + 60
    cfg = relation.PROOF_CONFIG
    assert induction.discharge(induction.Task(cfg, full, ob, deadline)).status == "holds"
    answer = induction.discharge(induction.Task(cfg, weaker, ob, deadline))
    assert answer.status == "fails" and "'tw_timer': True" in answer.detail
    assert "TIME-WAIT" not in answer.detail.split("with segment")[0]


def test_a_counterexample_the_model_rejects_is_spurious() -> None:
    claim = relation.BY_NAME["ack-before-close"]
    harmless = relation.replay(relation.PROOF_CONFIG, claim, [], [])
    assert not harmless.reproduced


# -------------------------------------------------------------- agreement

AGREEMENT_DEPTH = 4
CONFIGS = [None, *Variant]


def slow_except(variants: list[Variant | None], default: Variant | None) -> list[object]:
    """Each variant a parameter; all but `default` in the slow run (`pytest -m slow`)."""
    return [v if v is default else pytest.param(v, marks=SLOW) for v in variants]


def explorer_violates(property_name: str, variant: Variant | None) -> bool:
    prop = catalogue_property(property_name)
    scenarios = {e.scenario for e in prop.violated_by} | {"lifecycle"}
    for scenario in sorted(scenarios):
        result = explored(scenario, variant=variant)
        if result.violations.get(property_name) is not None:
            return True
    return False


@pytest.mark.parametrize(
    "variant", slow_except(CONFIGS, None), ids=lambda v: v.value if v else "spec"
)
def test_prover_and_explorer_agree(variant: Variant | None) -> None:
    """For every claim: refuted by the prover, with a run that replays in the model,
    exactly when the explorer violates the claim's catalogue property; proved
    otherwise (never unknown)."""
    cfg = relation.PROOF_CONFIG.with_(variant=variant)
    with induction.Workers() as workers:
        core = induction.prove_core(cfg, time.monotonic() + 300, workers)
        assert core.proved, core.failure
        for claim in relation.RELATION_CLAIMS:
            result = relation.check_claim(claim, cfg, 300, workers, core, AGREEMENT_DEPTH)
            violated = explorer_violates(claim.catalogue.name, variant)
            assert result.verdict == ("refuted" if violated else "proved"), (
                claim.name,
                result.reason,
            )
            assert violated == (variant in claim.broken_by)
            if violated:
                # The run replays in the model (check_claim did that); the same run is
                # harmless in the specification: the variant is to blame.
                assert result.events and result.chart
                spec = relation.replay(relation.PROOF_CONFIG, claim, result.events, result.isns)
                assert not spec.reproduced, spec.lines
