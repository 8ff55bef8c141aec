"""Systems: successors are deterministic, actions replay, scripts reach their ends."""

from __future__ import annotations

from collections import deque

import pytest

from synack.model import Flags, Reply, Segment, State, TimerKind
from synack.model.config import Variant
from synack.model.network import Direction, NetworkConfig
from synack.model.scenarios import DEFAULT_SCENARIOS, HAZARDS, SCENARIOS, get
from synack.model.system import (
    AppStep,
    DeliverSegment,
    Envelope,
    FireTimer,
    LoseSegment,
    NotEnabled,
    Side,
    System,
    SystemState,
    enabled,
    successors,
    transition,
)

from .util import REQUIRED_SCENARIOS


def test_all_required_scenarios_exist() -> None:
    assert set(SCENARIOS) >= set(REQUIRED_SCENARIOS)
    assert set(DEFAULT_SCENARIOS) == set(SCENARIOS) - set(HAZARDS)
    assert set(REQUIRED_SCENARIOS) <= set(DEFAULT_SCENARIOS)
    with pytest.raises(KeyError, match="unknown scenario"):
        get("nope")


def run_reliably(system: System, max_steps: int = 200) -> SystemState:
    """Follow a lossless, in-order run: the first enabled app step, else deliver."""
    state = system.initial
    for _ in range(max_steps):
        actions = [
            a
            for a in enabled(system, state)
            if isinstance(a, AppStep) or (isinstance(a, DeliverSegment) and not a.keep_copy)
        ]
        if not actions:
            timers = enabled(system, state)
            if not timers:
                return state
            actions = timers
        state, _ = transition(system, state, actions[0])
    raise AssertionError("run did not end")


@pytest.mark.parametrize(
    ("name", "client", "server", "client_error", "server_error"),
    [
        ("handshake", State.ESTABLISHED, State.ESTABLISHED, None, None),
        ("lifecycle", State.CLOSED, State.CLOSED, None, None),
        ("half-close", State.CLOSED, State.CLOSED, None, None),
        ("simultaneous-open", State.ESTABLISHED, State.ESTABLISHED, None, None),
        ("simultaneous-close", State.CLOSED, State.CLOSED, None, None),
        ("reconnect", State.CLOSED, State.CLOSED, None, None),
        ("abort", State.CLOSED, State.CLOSED, None, Reply.CONNECTION_RESET),
        ("refused", State.CLOSED, State.CLOSED, Reply.CONNECTION_RESET, None),
        ("syn-loss", State.ESTABLISHED, State.ESTABLISHED, None, None),
    ],
)
def test_reliable_run_reaches_the_intended_end(
    name: str,
    client: State,
    server: State,
    client_error: Reply | None,
    server_error: Reply | None,
) -> None:
    system = get(name).build(net=NetworkConfig(capacity=4, dup=0, loss=False, reorder=False))
    end = run_reliably(system)
    assert (end.client.state, end.server.state) == (client, server), end.describe()
    assert end.client_app.error is client_error
    assert end.server_app.error is server_error
    assert system.app_done(end, Side.CLIENT) and system.app_done(end, Side.SERVER)
    assert end.net.empty


def test_data_is_delivered_in_lifecycle_and_half_close() -> None:
    net = NetworkConfig(capacity=4, dup=0, loss=False, reorder=False)
    end = run_reliably(get("lifecycle").build(net=net))
    assert (end.server_app.received, end.client_app.received) == (b"hi", b"yo")
    end = run_reliably(get("half-close").build(net=net))
    assert (end.server_app.received, end.client_app.received) == (b"q", b"answer")


def test_successors_are_deterministic_and_replay() -> None:
    """Two BFS runs give the same labelled graph; every edge replays via transition()."""
    system = get("handshake").build()

    def explore() -> list[tuple[int, str, int]]:
        index = {system.initial: 0}
        queue = deque([system.initial])
        edges = []
        while queue:
            state = queue.popleft()
            for action, nxt in successors(system, state):
                if nxt not in index:
                    index[nxt] = len(index)
                    queue.append(nxt)
                edges.append((index[state], str(action), index[nxt]))
                assert transition(system, state, action)[0] == nxt
        return edges

    first = explore()
    assert first == explore()
    assert len(first) > 100


def test_disabled_action_is_refused() -> None:
    system = get("handshake").build()
    never_sent = Envelope(Segment(Flags.SYN, 1), 1)
    with pytest.raises(NotEnabled, match="not enabled"):
        transition(system, system.initial, DeliverSegment(Direction.C2S, never_sent))


def test_two_way_variant_connects_from_the_old_syn_in_reconnect() -> None:
    """A directed run of Figure 8 under the broken two-way handshake."""
    system = get("reconnect").build(variant=Variant.TWO_WAY_HANDSHAKE)
    state = system.initial
    state, _ = transition(system, state, AppStep(Side.SERVER))  # listen()
    state, _ = transition(system, state, AppStep(Side.CLIENT))  # connect(iss=90)
    state, _ = transition(system, state, AppStep(Side.CLIENT))  # crash: abort()
    (old_syn,) = state.net.c2s
    state, _ = transition(system, state, DeliverSegment(Direction.C2S, old_syn))
    assert state.server.state is State.ESTABLISHED
    assert state.server.irs == 90, "the server is connected to an incarnation that is gone"


def test_timers_wait_for_a_quiet_network_unless_eager() -> None:
    """RTO and 2 MSL abstractions: no timer expiry while a segment is in flight."""
    for eager in (False, True):
        system = get("handshake").build(eager_timers=eager)
        state, _ = transition(system, system.initial, AppStep(Side.CLIENT))  # SYN in flight
        fire = FireTimer(Side.CLIENT, TimerKind.RETRANSMISSION)
        assert (fire in enabled(system, state)) is eager
        (syn,) = state.net.c2s
        state, _ = transition(system, state, LoseSegment(Direction.C2S, syn))
        assert fire in enabled(system, state)
        state, info = transition(system, state, fire)
        assert [e.segment for e in info.sent] == [syn.segment], "the SYN is retransmitted"
