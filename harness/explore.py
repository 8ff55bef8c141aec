"""Exhaustive breadth-first exploration of a system, with the property catalogue.

`explore(system)` visits every reachable state once, checks each state
invariant on every new state and each transition property on every
transition, and afterwards decides the graph properties (deadlock,
liveness) on the whole graph.  Breadth-first order makes every reported
counterexample a shortest one.  Limits on states, seconds and memory stop
the run with a partial result and a reason, never a hang or an
out-of-memory kill.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from synack.model.system import Action, System, SystemState, apply, enabled
from synack.properties.catalogue import CATALOGUE, Kind, Property
from synack.properties.ends import End, blocked_description, end_kind

from .store import GraphStore, reaching

Progress = Callable[["Progressing"], None]


@dataclass(frozen=True)
class Limits:
    max_states: int | None = None
    budget: float | None = None  # seconds
    max_memory: int | None = None  # bytes of resident memory

    @staticmethod
    def default_memory() -> int:
        """Half of physical memory: far from an out-of-memory kill."""
        pages = os.sysconf("SC_PHYS_PAGES")
        return int(pages * os.sysconf("SC_PAGE_SIZE") // 2)


@dataclass(frozen=True)
class Progressing:
    states: int
    transitions: int
    depth: int
    frontier: int
    seconds: float


@dataclass
class Violation:
    property: str
    message: str
    node: int
    path: tuple[Action, ...]


@dataclass
class Exploration:
    """Everything one run found.  `complete` is False when a limit stopped it."""

    system: System
    store: GraphStore
    properties: tuple[Property, ...]
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0
    peak_rss: int = 0
    complete: bool = True
    stop_reason: str | None = None
    violations: dict[str, Violation] = field(default_factory=dict)
    ends: dict[End, int] = field(default_factory=dict)
    overflows: int = 0

    def holds(self, name: str) -> bool | None:
        """True, False, or None when an incomplete run cannot tell."""
        if name in self.violations:
            return False
        prop = next(p for p in self.properties if p.name == name)
        if not self.complete and prop.kind is Kind.GRAPH:
            return None
        return True if self.complete else None

    @property
    def bytes_per_state(self) -> float:
        return self.peak_rss / self.states if self.states else 0.0


def rss_now() -> int:
    """Resident memory of this process, in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def replay_path(system: System, indices: Sequence[int]) -> list[Action]:
    """The actions behind a list of action indices, replayed from the initial state."""
    state, actions = system.initial, []
    for index in indices:
        action = enabled(system, state)[index]
        actions.append(action)
        state = apply(system, state, action)[0]
    return actions


def explore(
    system: System,
    properties: Sequence[Property] = CATALOGUE,
    limits: Limits | None = None,
    progress: Progress | None = None,
    every: int = 2000,
) -> Exploration:
    limits = limits or Limits(max_memory=Limits.default_memory())
    store = GraphStore()
    result = Exploration(system, store, tuple(properties))
    state_props = [p for p in properties if p.check_state is not None]
    edge_props = [p for p in properties if p.check_transition is not None]
    start = time.monotonic()
    rss_start = rss_now()
    root, _ = store.add_state(system.initial, -1, -1)
    _check_state(system, system.initial, root, state_props, result)
    queue: deque[tuple[SystemState, int]] = deque([(system.initial, root)])
    good_ends: list[int] = []
    bad_ends: list[int] = []
    try:
        _bfs(
            system,
            store,
            result,
            queue,
            good_ends,
            bad_ends,
            edge_props,
            state_props,
            limits,
            progress,
            every,
            start,
            rss_start,
        )
    except KeyboardInterrupt:
        result.complete, result.stop_reason = False, "interrupted (Ctrl-C)"
    result.states = len(store)
    if result.complete:
        _graph_properties(system, store, result, good_ends, bad_ends)
    # A deadlock found before a limit stays: a sink has no successors, whatever
    # the unexplored rest of the graph holds.
    _fill_paths(system, store, result)
    result.seconds = time.monotonic() - start
    result.peak_rss = max(0, rss_now() - rss_start)
    if progress is not None:
        progress(_progressing(result, store, queue, start))
    return result


def _bfs(
    system: System,
    store: GraphStore,
    result: Exploration,
    queue: deque[tuple[SystemState, int]],
    good_ends: list[int],
    bad_ends: list[int],
    edge_props: Sequence[Property],
    state_props: Sequence[Property],
    limits: Limits,
    progress: Progress | None,
    every: int,
    start: float,
    rss_start: int,
) -> None:
    """The breadth-first loop; stops early (result.complete = False) at a limit."""
    expanded = 0
    while queue:
        state, node = queue.popleft()
        actions = enabled(system, state)
        if not actions:
            kind = end_kind(system, state)
            result.ends[kind] = result.ends.get(kind, 0) + 1
            (bad_ends if kind is End.NONE else good_ends).append(node)
            if kind is End.NONE and "no-deadlock" not in result.violations:
                why = blocked_description(system, state)
                result.violations["no-deadlock"] = Violation(
                    "no-deadlock", f"deadlock: {why}", node, ()
                )
        for index, action in enumerate(actions):
            nxt, info = apply(system, state, action)
            target, new = store.add_state(nxt, node, index)
            store.add_edge(node, target)
            result.transitions += 1
            result.overflows += len(info.overflowed)
            for prop in edge_props if info.side is not None else ():
                # every transition property is about an endpoint's step; a loss is none
                if prop.name in result.violations:
                    continue
                assert prop.check_transition is not None
                message = prop.check_transition(system, state, info, nxt)
                if message:
                    result.violations[prop.name] = Violation(prop.name, message, node, ())
                    result.violations[prop.name].path = (*_path(system, store, node), action)
            if new:
                result.depth = max(result.depth, store.depth(target))
                _check_state(system, nxt, target, state_props, result)
                queue.append((nxt, target))
        expanded += 1
        if expanded % every == 0:
            stop = _limit_reached(limits, len(store), start, rss_start)
            if progress is not None:
                progress(_progressing(result, store, queue, start))
            if stop is not None:
                result.complete, result.stop_reason = False, stop
                break
        elif limits.max_states is not None and len(store) >= limits.max_states and queue:
            result.complete = False
            result.stop_reason = f"state limit reached: {len(store):,} states (--max-states)"
            break


def _progressing(
    result: Exploration, store: GraphStore, queue: deque[tuple[SystemState, int]], start: float
) -> Progressing:
    return Progressing(
        len(store), result.transitions, result.depth, len(queue), time.monotonic() - start
    )


def _limit_reached(limits: Limits, states: int, start: float, rss_start: int) -> str | None:
    if limits.max_states is not None and states >= limits.max_states:
        return f"state limit reached: {states:,} states (--max-states)"
    if limits.budget is not None and time.monotonic() - start >= limits.budget:
        return f"time budget of {limits.budget:g} s used up (--budget)"
    if limits.max_memory is not None and rss_now() >= limits.max_memory:
        return f"memory limit reached: {rss_now() / 2**20:,.0f} MiB resident"
    return None


def _check_state(
    system: System,
    state: SystemState,
    node: int,
    props: Sequence[Property],
    result: Exploration,
) -> None:
    for prop in props:
        if prop.name in result.violations:
            continue
        assert prop.check_state is not None
        message = prop.check_state(system, state)
        if message:
            result.violations[prop.name] = Violation(prop.name, message, node, ())


def _graph_properties(
    system: System,
    store: GraphStore,
    result: Exploration,
    good_ends: list[int],
    bad_ends: list[int],
) -> None:
    names = {p.name for p in result.properties}
    if "no-deadlock" in result.violations:
        shallowest = min(bad_ends, key=store.depth)
        result.violations["no-deadlock"].node = shallowest
    if "eventually-quiescent" in names:
        can_end = reaching(store, good_ends)
        stuck = [n for n in store.nodes() if n not in can_end]
        if stuck:
            node = min(stuck, key=store.depth)
            result.violations["eventually-quiescent"] = Violation(
                "eventually-quiescent",
                f"{len(stuck):,} reachable states from which no proper end is reachable; "
                "the shortest path to one is shown",
                node,
                (),
            )
    if "no-deadlock" not in names:
        result.violations.pop("no-deadlock", None)


def _path(system: System, store: GraphStore, node: int) -> tuple[Action, ...]:
    return tuple(replay_path(system, store.path_indices(node)))


def _fill_paths(system: System, store: GraphStore, result: Exploration) -> None:
    for violation in result.violations.values():
        if not violation.path and violation.node > 0:
            violation.path = _path(system, store, violation.node)
    # keep catalogue order
    order = [p.name for p in result.properties]
    result.violations = dict(
        sorted(result.violations.items(), key=lambda item: order.index(item[0]))
    )
