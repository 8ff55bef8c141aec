"""`step` is total: every state x every event kind gives a TCB and defined outputs.

Also: it is deterministic, and TCB invariants hold after any sequence of events.
"""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synack.model import (
    HANDLERS,
    AbortCall,
    CloseCall,
    Config,
    Deliver,
    Emit,
    Flags,
    OpenCall,
    Output,
    ReceiveCall,
    Segment,
    SegmentArrives,
    SendCall,
    Signal,
    State,
    Tcb,
    Timeout,
    TimerCancel,
    TimerKind,
    TimerSet,
    Variant,
    step,
)
from synack.model.seq import MASK, seq_add, seq_le, seq_sub
from synack.model.types import EVENT_KINDS, Event

from .states import all_configs, one_of_each_state

CONFIGS = all_configs()
START = [(cfg, name, tcb) for cfg in CONFIGS for name, tcb in one_of_each_state(cfg).items()]
OUTPUT_TYPES = (Emit, Signal, Deliver, TimerSet, TimerCancel)


def test_fixture_covers_all_eleven_states() -> None:
    for cfg in CONFIGS:
        reached = {tcb.state for tcb in one_of_each_state(cfg).values()}
        expected = set(State)
        if cfg.variant is Variant.NO_TIME_WAIT:
            expected.discard(State.TIME_WAIT)
        if cfg.variant is Variant.EARLY_CLOSE:
            expected.discard(State.CLOSING)  # any ACK of the crossing FIN ends FIN-WAIT-1
        assert reached == expected, cfg


def test_handler_table_is_total_over_event_kinds() -> None:
    assert set(HANDLERS) == set(EVENT_KINDS)


# --------------------------------------------------------------- strategies

u32 = st.integers(0, MASK)
flag_sets = st.integers(0, 0x3F).map(Flags)


@st.composite
def seq_near(draw: st.DrawFn, anchor: int, wnd: int) -> int:
    """A sequence number relative to `anchor`: exact, in window, edges, old, future, random."""
    kind = draw(st.sampled_from(["exact", "in", "edge", "old", "future", "random"]))
    if kind == "exact":
        return anchor
    if kind == "in":
        return seq_add(anchor, draw(st.integers(0, max(wnd - 1, 0))))
    if kind == "edge":
        return seq_add(anchor, draw(st.sampled_from([-1, wnd, wnd - 1, 1])) & MASK)
    if kind == "old":
        return seq_sub(anchor, draw(st.integers(1, 1 << 20)))
    if kind == "future":
        return seq_add(anchor, draw(st.integers(wnd, 1 << 20)))
    return draw(u32)


@st.composite
def segments_for(draw: st.DrawFn, tcb: Tcb) -> Segment:
    return Segment(
        flags=draw(flag_sets),
        seq=draw(seq_near(tcb.rcv_nxt, tcb.rcv_wnd)),
        ack=draw(seq_near(tcb.snd_nxt, 4)),
        wnd=draw(st.sampled_from([0, 1, 4, 8, 0xFFFF])),
        payload=draw(st.binary(max_size=10)),
        up=draw(st.integers(0, 12)),
    )


@st.composite
def events_for(draw: st.DrawFn, tcb: Tcb) -> Event:
    kind = draw(st.sampled_from(EVENT_KINDS))
    if kind is OpenCall:
        return OpenCall(draw(st.booleans()), draw(st.none() | u32), remote=draw(st.booleans()))
    if kind is SendCall:
        return SendCall(draw(st.binary(min_size=1, max_size=12)))
    if kind is SegmentArrives:
        return SegmentArrives(draw(segments_for(tcb)))
    if kind is Timeout:
        return Timeout(draw(st.sampled_from(TimerKind)))
    event: Event = kind()
    return event


# ---------------------------------------------------------------- checks


def check_step(tcb: Tcb, event: Event) -> Tcb:
    """Run one step and check everything that must hold of any step."""
    new, outputs = step(tcb, event)
    assert isinstance(new, Tcb)
    assert isinstance(outputs, tuple)
    assert all(isinstance(o, OUTPUT_TYPES) for o in outputs), outputs
    assert step(tcb, event) == (new, outputs), "step is not deterministic"
    check_timer_outputs(tcb, new, outputs)
    check_invariants(new)
    return new


def check_timer_outputs(old: Tcb, new: Tcb, outputs: tuple[Output, ...]) -> None:
    """The timer set/cancel outputs account for every change of armed timers."""
    set_kinds = {o.kind for o in outputs if isinstance(o, TimerSet)}
    cancelled = {o.kind for o in outputs if isinstance(o, TimerCancel)}
    for kind in new.timers - old.timers:
        assert kind in set_kinds, f"{kind} armed without TimerSet"
    for kind in old.timers - new.timers:
        assert kind in cancelled, f"{kind} disarmed without TimerCancel"


def check_invariants(tcb: Tcb) -> None:
    if tcb.state in (State.CLOSED, State.LISTEN):
        assert not tcb.timers, f"{tcb.state} with timers {tcb.timers}"
        assert not tcb.fin_sent and not tcb.rcv_buf
        if tcb.state is State.CLOSED:
            assert tcb == Tcb(cfg=tcb.cfg, iss_pool=tcb.iss_pool), "CLOSED keeps no TCB"
        return
    assert seq_le(tcb.snd_una, tcb.snd_nxt), "SND.UNA =< SND.NXT"
    assert seq_le(tcb.iss, tcb.snd_una), "ISS =< SND.UNA"
    assert 0 <= tcb.in_flight <= len(tcb.snd_buf), "sent text is retained until ACKed"
    assert len(tcb.rcv_buf) <= tcb.cfg.rcv_wnd, "never more text than the window offered"
    assert (TimerKind.TIME_WAIT in tcb.timers) == (tcb.state is State.TIME_WAIT)
    if tcb.state is State.TIME_WAIT:
        assert tcb.timers == {TimerKind.TIME_WAIT}, "TIME-WAIT turns off the other timers"
    if tcb.fin_sent:
        assert tcb.state in (
            State.FIN_WAIT_1,
            State.FIN_WAIT_2,
            State.CLOSING,
            State.LAST_ACK,
            State.TIME_WAIT,
        ), f"FIN sent in {tcb.state}"
    outstanding = tcb.snd_una != tcb.snd_nxt or bool(tcb.unsent)
    if outstanding and tcb.state is not State.TIME_WAIT:
        assert TimerKind.RETRANSMISSION in tcb.timers, "unacknowledged data without a timer"
    for f in ("snd_una", "snd_nxt", "rcv_nxt", "iss", "irs"):
        assert 0 <= getattr(tcb, f) <= MASK


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("kind", EVENT_KINDS, ids=lambda k: k.__name__)
def test_every_state_and_event_kind_without_generated_data(kind: type) -> None:
    """The whole (state x event kind) table, one plain event of each kind."""
    for _cfg, _name, tcb in START:
        if kind is OpenCall:
            events: list[Event] = [OpenCall(True, 5), OpenCall(False)]
        elif kind is SendCall:
            events = [SendCall(b"xy")]
        elif kind is SegmentArrives:
            events = [
                SegmentArrives(Segment(f, tcb.rcv_nxt, tcb.snd_nxt, 8))
                for f in (Flags.SYN, Flags.ACK, Flags.RST, Flags.FIN | Flags.ACK)
            ]
        elif kind is Timeout:
            events = [Timeout(k) for k in TimerKind]
        else:
            events = [kind()]
        for event in events:
            check_step(tcb, event)


@given(st.sampled_from(START).flatmap(lambda s: st.tuples(st.just(s[2]), events_for(s[2]))))
def test_step_is_total(start_and_event: tuple[Tcb, Event]) -> None:
    tcb, event = start_and_event
    check_step(tcb, event)


@given(st.sampled_from(START), st.data())
def test_invariants_hold_after_any_event_sequence(
    start: tuple[Config, str, Tcb], data: st.DataObject
) -> None:
    tcb = start[2]
    for _ in range(data.draw(st.integers(1, 25), label="length")):
        event = data.draw(events_for(tcb), label="event")
        tcb = check_step(tcb, event)


def test_tcb_fields_are_plain_values() -> None:
    """A TCB is hashable and compares by value: exploration de-duplicates on it."""
    for _cfg, _name, tcb in START:
        copy = Tcb(**{f.name: getattr(tcb, f.name) for f in fields(tcb) if f.init})
        assert copy == tcb and hash(copy) == hash(tcb)


def test_receive_and_abort_defined_in_closed() -> None:
    for event in (ReceiveCall(), AbortCall(), CloseCall(), SendCall(b"z")):
        new, outputs = step(Tcb(), event)
        assert new.state is State.CLOSED
        assert [o for o in outputs if isinstance(o, Signal)], f"{event} in CLOSED must answer"
