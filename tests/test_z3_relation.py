"""The z3 transition relation: fidelity to `model.step`, refutations, agreement.

Fidelity: hypothesis picks a TCB in any of the eleven states (reached
through real events, then shifted so its sequence numbers sit near the
2**32 wrap) and any event; the encoding evaluated on those values must
give exactly the model's successor TCB and outputs (text compared by
length).  The only inputs it may decline are those outside its stated
domain, and there the model must really send more text segments than
the encoding unrolls.

Refutation: every variant is refuted on the claim it breaks, with a
counterexample that replays in the Python model.  Agreement: for every
(claim, variant) pair the prover finds a violation exactly when the
explorer finds one of the catalogue property the claim belongs to.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synack.harness import induction, relation
from synack.harness.invariants import LOCAL_CORE
from synack.harness.z3step import disagreement, evaluate_concrete
from synack.harness.z3tcb import LOOP_BOUND
from synack.model import (
    Emit,
    Event,
    Flags,
    Segment,
    SegmentArrives,
    State,
    Tcb,
    Variant,
    step,
)
from synack.model.seq import seq_add
from synack.model.types import EVENT_KINDS
from synack.properties.catalogue import get as catalogue_property

from .explored import explored
from .states import all_configs, one_of_each_state
from .test_totality import events_for

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
    _, _, inside = evaluate_concrete(tcb, event)
    if not inside:
        _, outputs = step(tcb, event)
        text_segments = [o for o in outputs if isinstance(o, Emit) and o.segment.payload]
        assert len(text_segments) > LOOP_BOUND, "the domain flag refused an input it covers"
        return
    problem = disagreement(tcb, event)
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


@pytest.mark.parametrize(
    "claim, variant",
    [(c, v) for c in relation.RELATION_CLAIMS for v in c.broken_by],
    ids=lambda x: getattr(x, "name", None) or getattr(x, "value", str(x)),
)
def test_variant_is_refuted_with_a_counterexample_that_replays(
    claim: relation.RelationClaim, variant: Variant
) -> None:
    cfg = relation.PROOF_CONFIG.with_(variant=variant)
    found = induction.bmc_local(cfg, claim.formula, 6, time.monotonic() + 120)
    assert isinstance(found, induction.Trace), found
    replayed = relation.replay(cfg, claim, found.events, found.isns)
    assert replayed.reproduced, replayed.lines
    # The same run is harmless in the specification: the variant is to blame.
    spec = relation.replay(relation.PROOF_CONFIG, claim, found.events, found.isns)
    assert not spec.reproduced, spec.lines


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


def explorer_violates(property_name: str, variant: Variant | None) -> bool:
    prop = catalogue_property(property_name)
    scenarios = {e.scenario for e in prop.violated_by} | {"lifecycle"}
    for scenario in sorted(scenarios):
        result = explored(scenario, variant=variant)
        if result.violations.get(property_name) is not None:
            return True
    return False


@pytest.mark.parametrize("variant", CONFIGS, ids=lambda v: v.value if v else "spec")
@pytest.mark.parametrize("claim", relation.RELATION_CLAIMS, ids=lambda c: c.name)
def test_prover_and_explorer_agree(claim: relation.RelationClaim, variant: Variant | None) -> None:
    cfg = relation.PROOF_CONFIG.with_(variant=variant)
    found = induction.bmc_local(cfg, claim.formula, AGREEMENT_DEPTH, time.monotonic() + 300)
    assert not isinstance(found, str), found
    prover = found is not None and relation.replay(cfg, claim, found.events, found.isns).reproduced
    assert prover == explorer_violates(claim.catalogue, variant)
