"""Exhaustive breadth-first exploration of a system, with the property catalogue.

`explore(system)` visits every reachable state once, checks each state
invariant on every new state, each transition property on every
transition and each sink check (deadlock) on every state without
successors, and afterwards hands the whole graph to the graph checks
(liveness).  The properties decide; the explorer names none.
Breadth-first order makes every reported counterexample a shortest one.
Limits on states, seconds and memory stop the run with a partial result
and a reason, never a hang or an out-of-memory kill.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from synack.harness.check.store import GraphStore, reaching
from synack.model.system import Action, System, SystemState, apply, enabled
from synack.properties.catalogue import CATALOGUE, Kind, Property
from synack.properties.ends import End, end_kind

Progress = Callable[["Progressing"], None]


@dataclass(frozen=True)
class Limits:
    max_states: int | None = None
    budget: float | None = None  # seconds
    max_memory: int | None = None  # bytes of resident memory
    first_violation: bool = False  # stop at the first violation (breadth-first: a shortest)

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
    visit: Callable[[int, SystemState], None] | None = None,
) -> Exploration:
    """Explore `system` breadth-first; see the module docstring.

    `visit(node, state)` is called once for each state, when it is found.
    """
    limits = limits or Limits(max_memory=Limits.default_memory())
    search = _Search(system, properties, limits, visit)
    try:
        search.run(progress, every)
    except KeyboardInterrupt:
        search.stop("interrupted (Ctrl-C)")
    return search.finish(progress)


class _Search:
    """One breadth-first run: the frontier, the store, and what was found so far."""

    def __init__(
        self,
        system: System,
        properties: Sequence[Property],
        limits: Limits,
        visit: Callable[[int, SystemState], None] | None = None,
    ) -> None:
        self.system, self.limits, self.visit = system, limits, visit
        self.store = GraphStore()
        self.result = Exploration(system, self.store, tuple(properties))
        self.state_props = [p for p in properties if p.check_state is not None]
        self.edge_props = [p for p in properties if p.check_transition is not None]
        self.end_props = [p for p in properties if p.check_end is not None]
        self.start, self.rss_start = time.monotonic(), rss_now()
        self.proper_ends: list[int] = []
        self.violating_ends: dict[str, list[int]] = {p.name: [] for p in self.end_props}
        root, _ = self.store.add_state(system.initial, -1, -1)
        if visit is not None:
            visit(root, system.initial)
        _check_state(system, system.initial, root, self.state_props, self.result)
        self.queue: deque[tuple[SystemState, int]] = deque([(system.initial, root)])

    def stop(self, reason: str) -> None:
        self.result.complete, self.result.stop_reason = False, reason

    def run(self, progress: Progress | None, every: int) -> None:
        expanded = 0
        max_states = self.limits.max_states
        while self.queue:
            if max_states is not None and len(self.store) >= max_states:
                self.stop(f"state limit reached: {len(self.store):,} states (--max-states)")
                return
            self.expand(*self.queue.popleft())
            expanded += 1
            if self.limits.first_violation and self.result.violations:
                self.stop("stopped at the first violation")
                return
            if expanded % every == 0:
                if progress is not None:
                    progress(self.progressing())
                reason = _time_or_memory_limit(self.limits, self.start)
                if reason is not None:
                    self.stop(reason)
                    return

    def expand(self, state: SystemState, node: int) -> None:
        system, store, result = self.system, self.store, self.result
        actions = enabled(system, state)
        if not actions:
            self.sink(state, node)
        for index, action in enumerate(actions):
            nxt, info = apply(system, state, action)
            target, new = store.add_state(nxt, node, index)
            store.add_edge(node, target)
            result.transitions += 1
            result.overflows += len(info.overflowed)
            # Every transition property is about an endpoint's step; a loss is none.
            for prop in self.edge_props if info.side is not None else ():
                if prop.name in result.violations:
                    continue
                assert prop.check_transition is not None
                message = prop.check_transition(system, state, info, nxt)
                if message:
                    path = (*_path(system, store, node), action)
                    result.violations[prop.name] = Violation(prop.name, message, node, path)
            if new:
                if self.visit is not None:
                    self.visit(target, nxt)
                result.depth = max(result.depth, store.depth(target))
                _check_state(system, nxt, target, self.state_props, result)
                self.queue.append((nxt, target))

    def sink(self, state: SystemState, node: int) -> None:
        kind = end_kind(self.system, state)
        self.result.ends[kind] = self.result.ends.get(kind, 0) + 1
        if kind is not End.NONE:
            self.proper_ends.append(node)
        for prop in self.end_props:
            assert prop.check_end is not None
            message = prop.check_end(self.system, state)
            if not message:
                continue
            self.violating_ends[prop.name].append(node)
            if prop.name not in self.result.violations:
                self.result.violations[prop.name] = Violation(prop.name, message, node, ())

    def decide_graph(self) -> None:
        """The graph properties on the whole graph; a sink's violation moves to the
        shallowest sink that shows it (breadth-first: a shortest counterexample)."""
        result, store = self.result, self.store
        for prop in self.end_props:
            nodes = self.violating_ends[prop.name]
            if nodes:
                result.violations[prop.name].node = min(nodes, key=store.depth)
        graph = _Graph(store, self.proper_ends)
        for prop in result.properties:
            if prop.check_graph is None or prop.name in result.violations:
                continue
            found = prop.check_graph(self.system, graph)
            if found is not None:
                node, message = found
                result.violations[prop.name] = Violation(prop.name, message, node, ())

    def progressing(self) -> Progressing:
        r = self.result
        seconds = time.monotonic() - self.start
        return Progressing(len(self.store), r.transitions, r.depth, len(self.queue), seconds)

    def finish(self, progress: Progress | None) -> Exploration:
        result, store = self.result, self.store
        result.states = len(store)
        if result.complete:
            self.decide_graph()
        # A violation at a sink found before a limit stays: a sink has no
        # successors, whatever the unexplored rest of the graph holds.
        _fill_paths(self.system, store, result)
        result.seconds = time.monotonic() - self.start
        result.peak_rss = max(0, rss_now() - self.rss_start)
        if progress is not None:
            progress(self.progressing())
        return result


def _time_or_memory_limit(limits: Limits, start: float) -> str | None:
    if limits.budget is not None and time.monotonic() - start >= limits.budget:
        return f"time budget of {limits.budget:g} s used up (--budget)"
    if limits.max_memory is not None:
        rss = rss_now()
        if rss >= limits.max_memory:
            return f"memory limit reached: {rss / 2**20:,.0f} MiB resident"
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


@dataclass
class _Graph:
    """The store as `properties.catalogue.Graph`."""

    store: GraphStore
    proper_ends: Sequence[int]

    def nodes(self) -> Iterable[int]:
        return self.store.nodes()

    def depth(self, node: int) -> int:
        return self.store.depth(node)

    def reaching(self, targets: Iterable[int]) -> set[int]:
        return reaching(self.store, targets)


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
