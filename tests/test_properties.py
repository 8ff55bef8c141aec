"""The property catalogue, both ways.

Every property holds on every default scenario under the default network,
for each profile; and each variant violates each property in its list,
with a counterexample of the expected shape, asserted on the steps.  Every
counterexample replays through the model and still violates the property
where it ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from synack.harness.check.counterexample import (
    Step,
    actions_from_json,
    reproduces,
    run,
    step_to_json,
    system_from_json,
    system_to_json,
)
from synack.harness.check.explore import Exploration
from synack.harness.check.fingerprint import fingerprint
from synack.model import Flags, Profile, State
from synack.model.scenarios import DEFAULT_SCENARIOS, get
from synack.model.system import DeliverSegment, FireTimer, Side, enabled, receiver
from synack.model.types import Emit, TimerKind
from synack.properties import CATALOGUE, End, Kind, end_kind
from synack.properties.catalogue import Expect, Property, deviation

from .explored import explored

EXPECTATIONS = [(prop, expect) for prop in CATALOGUE for expect in prop.violated_by]


def _id(item: tuple[Property, Expect]) -> str:
    prop, expect = item
    return f"{prop.name}-{expect.variant.value}-{expect.scenario}-{expect.profile.value}"


@pytest.mark.parametrize("profile", list(Profile), ids=lambda p: p.value)
@pytest.mark.parametrize("scenario", DEFAULT_SCENARIOS)
def test_every_property_holds_on_every_default_scenario(scenario: str, profile: Profile) -> None:
    """...except where a profile documents that its stack violates one (a Deviation)."""
    result = explored(scenario, profile)
    assert result.complete
    documented = {p.name for p in CATALOGUE if deviation(p.name, profile, scenario)}
    assert set(result.violations) == documented, {
        n: v.message for n, v in result.violations.items()
    }
    assert all(result.holds(p.name) for p in CATALOGUE if p.name not in documented)
    assert End.NONE not in result.ends


def test_linux_completes_closing_without_reacking_a_retransmitted_fin() -> None:
    """The documented Linux deviation: in CLOSING, the peer's retransmitted FIN
    that ACKs our FIN takes us to TIME-WAIT silently; RFC 9293 ACKs it."""
    result = explored("simultaneous-close", Profile.LINUX)
    violation = result.violations["time-wait-reacks-fin"]
    last = run(result.system, violation.path)[-1]
    assert isinstance(last.action, DeliverSegment)
    side = receiver(last.action.direction)
    fin = last.action.envelope.segment
    assert fin.fin and last.before.tcb(side).state is State.CLOSING
    assert last.after.tcb(side).state is State.TIME_WAIT
    assert not [o for o in last.info.outputs if isinstance(o, Emit)]
    assert explored("simultaneous-close", Profile.RFC9293).holds("time-wait-reacks-fin")


def test_every_property_has_a_violating_variant() -> None:
    assert all(prop.violated_by for prop in CATALOGUE)


@pytest.mark.parametrize("item", EXPECTATIONS, ids=[_id(i) for i in EXPECTATIONS])
def test_specification_holds_where_the_variant_is_shown(item: tuple[Property, Expect]) -> None:
    prop, expect = item
    assert explored(expect.scenario, expect.profile).holds(prop.name) is True


@pytest.mark.parametrize("item", EXPECTATIONS, ids=[_id(i) for i in EXPECTATIONS])
def test_variant_violates_with_expected_shape(item: tuple[Property, Expect]) -> None:
    prop, expect = item
    result = explored(expect.scenario, expect.profile, expect.variant)
    assert prop.name in result.violations, f"{expect.variant.value} did not violate {prop.name}"
    violation = result.violations[prop.name]
    steps = run(result.system, violation.path)
    SHAPES[prop.name](result, steps)
    assert reproduces(result.system, prop, violation.path), "counterexample does not reproduce"
    # The JSON form (what --json and --out write) rebuilds the same system and
    # the same actions, and replays to the same violation.
    header = system_to_json(result.system, expect.scenario, expect.profile, expect.variant)
    document = json.loads(json.dumps({**header, "steps": [step_to_json(x) for x in steps]}))
    system = system_from_json(document)
    actions = actions_from_json(document["steps"])
    assert actions == list(violation.path)
    assert reproduces(system, prop, actions)
    assert document["steps"][-1]["after"]["fingerprint"] == fingerprint(steps[-1].after)


def _last_delivery(steps: list[Step]) -> DeliverSegment:
    action = steps[-1].action
    assert isinstance(action, DeliverSegment), f"last step is {action}"
    return action


def _old_syn_connects(result: Exploration, steps: list[Step]) -> None:
    delivery = _last_delivery(steps)
    seg = delivery.envelope.segment
    last = steps[-1]
    if result.system.initial.client.cfg.variant.value == "two-way-handshake":  # type: ignore[union-attr]
        # the server reaches ESTABLISHED from the old SYN (ISN 90) of a crashed incarnation
        assert seg.flags == Flags.SYN and seg.seq == 90
        assert last.after.server.state is State.ESTABLISHED
        assert last.after.client_app.incarnation == 2 and delivery.envelope.incarnation == 1
    else:
        # the client accepts a SYN,ACK that acknowledges its old ISN 90, not its ISN 100
        assert seg.flags == Flags.SYN | Flags.ACK and seg.ack == 91
        assert last.after.client.state is State.ESTABLISHED and last.after.client.iss == 100


def _closes_with_fin_unacked(result: Exploration, steps: list[Step]) -> None:
    last = steps[-1]
    side = last.info.side
    assert side is not None
    before, after = last.before.tcb(side), last.after.tcb(side)
    assert before.fin_sent and not before.fin_acked
    assert after.state in (State.CLOSED, State.TIME_WAIT)


def _half_close_data_lost(result: Exploration, steps: list[Step]) -> None:
    final = steps[-1].after
    assert final.server_app.sent == b"answer"
    assert final.client_app.received != b"answer"
    dropped = [
        s
        for s in steps
        if isinstance(s.action, DeliverSegment)
        and s.action.envelope.segment.payload
        and s.before.client.state is State.FIN_WAIT_2
    ]
    assert dropped, "the server's data reached the client in FIN-WAIT-2"
    assert all(s.after.client_app.received == s.before.client_app.received for s in dropped)


def _retransmitted_fin_meets_rst(result: Exploration, steps: list[Step]) -> None:
    delivery = _last_delivery(steps)
    assert delivery.envelope.segment.fin
    last = steps[-1]
    side = last.info.side
    assert side is not None and last.before.tcb(side).state is State.CLOSED
    answers = [e.segment for e in last.info.sent] + [e.segment for e in last.info.overflowed]
    assert [a.flags for a in answers] == [Flags.RST]


def _old_segment_reaches_new_incarnation(result: Exploration, steps: list[Step]) -> None:
    delivery = _last_delivery(steps)
    last = steps[-1]
    side = last.info.side
    assert side is not None
    assert delivery.envelope.incarnation < last.before.app(side).irs_from
    assert last.before.app(side.peer).incarnation == 2


def _syn_sent_too_often(result: Exploration, steps: list[Step]) -> None:
    final = steps[-1].after
    cfg = final.client.cfg
    assert final.client_app.syn_tx > 1 + cfg.syn_retries
    last = steps[-1].action
    assert isinstance(last, FireTimer) and last.kind is TimerKind.RETRANSMISSION
    assert [e.segment.flags for e in steps[-1].info.sent] == [Flags.SYN]


def _ends_in_deadlock(result: Exploration, steps: list[Step]) -> None:
    final = steps[-1].after
    assert enabled(result.system, final) == []
    assert end_kind(result.system, final) is End.NONE
    blocked = [s for s in Side if not result.system.app_done(final, s)]
    assert blocked and all(final.app(s).error is None for s in Side)


def _no_end_reachable(result: Exploration, steps: list[Step]) -> None:
    prop = next(p for p in CATALOGUE if p.name == "eventually-quiescent")
    assert prop.kind is Kind.GRAPH
    assert reproduces(result.system, prop, [s.action for s in steps])


SHAPES: dict[str, Callable[[Exploration, list[Step]], None]] = {
    "no-old-syn-connection": _old_syn_connects,
    "ack-before-close": _closes_with_fin_unacked,
    "graceful-close-delivers-all-data": _half_close_data_lost,
    "half-close-delivers": _half_close_data_lost,
    "time-wait-reacks-fin": _retransmitted_fin_meets_rst,
    "no-stale-segment-accepted": _old_segment_reaches_new_incarnation,
    "retransmission-bounded": _syn_sent_too_often,
    "no-deadlock": _ends_in_deadlock,
    "eventually-quiescent": _no_end_reachable,
}


def test_every_property_has_a_shape_check() -> None:
    assert set(SHAPES) == {p.name for p in CATALOGUE}


@pytest.mark.parametrize("profile", [Profile.RFC9293, Profile.LINUX], ids=lambda p: p.value)
def test_time_wait_assassination_in_reuse(profile: Profile) -> None:
    """RFC 1337: without its fix, a RST ends TIME-WAIT early and old segments reach
    the next incarnation.  RFC 9293 as written, and Linux by default, allow this."""
    result = explored("reuse", profile)
    violation = result.violations["no-stale-segment-accepted"]
    steps = run(result.system, violation.path)
    killed = [
        s
        for s in steps
        if isinstance(s.action, DeliverSegment)
        and s.action.envelope.segment.rst
        and s.before.client.state is State.TIME_WAIT
        and s.after.client.state is State.CLOSED
    ]
    assert killed, "TIME-WAIT is ended by a RST"
    assert get("reuse").name not in DEFAULT_SCENARIOS
    assert explored("reuse", Profile.RFC1337).violations == {}
