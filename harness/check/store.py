"""Where the explorer keeps the state graph: a small interface and a networkx store.

States are not stored.  Each state gets a compact key (its components
interned to small integers and packed into one int) and a node id in
discovery order; the graph holds node ids only, and a parent pointer per
node (parent id, index of the action in `enabled(parent)`) lets a path be
rebuilt by replaying from the initial state.  A more compact store can
replace `GraphStore` behind the same interface.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Protocol

import networkx as nx

from synack.model.system import SystemState

_SHIFT = 24  # bits per interned component id: 16 million distinct values each


class Interner:
    """Small integer ids for hashable values, in order of first sight."""

    def __init__(self) -> None:
        self.ids: dict[object, int] = {}

    def __call__(self, value: object) -> int:
        ids = self.ids
        found = ids.get(value)
        if found is None:
            found = ids[value] = len(ids)
            if found >= 1 << _SHIFT:
                raise OverflowError("more than 2**24 distinct values of one state component")
        return found


class StateStore(Protocol):
    def add_state(self, state: SystemState, parent: int, action_index: int) -> tuple[int, bool]:
        """The node id of `state`, and whether it is new (then `parent` is recorded)."""

    def add_edge(self, source: int, target: int) -> None: ...

    def __len__(self) -> int: ...

    def depth(self, node: int) -> int: ...

    def path_indices(self, node: int) -> list[int]:
        """Action indices from the initial state to `node`."""

    def predecessors(self, node: int) -> Iterable[int]: ...

    def nodes(self) -> Iterable[int]: ...


class GraphStore:
    """A `networkx.DiGraph` of node ids plus packed state keys and parent pointers."""

    def __init__(self) -> None:
        self.graph: nx.DiGraph[int] = nx.DiGraph()
        self._keys: dict[int, int] = {}
        self._parent = array("q")
        self._via = array("l")
        self._depth = array("l")
        self._tcbs, self._apps, self._channels = Interner(), Interner(), Interner()

    def key(self, state: SystemState) -> int:
        tcb, app, chan = self._tcbs, self._apps, self._channels
        net = state.net
        key = tcb(state.client)
        for part in (
            tcb(state.server),
            chan(net.c2s),
            chan(net.s2c),
            net.dups_left,
            app(state.client_app),
            app(state.server_app),
        ):
            key = (key << _SHIFT) | part
        return key

    def add_state(self, state: SystemState, parent: int, action_index: int) -> tuple[int, bool]:
        key = self.key(state)
        node = self._keys.get(key)
        if node is not None:
            return node, False
        node = self._keys[key] = len(self._keys)
        self.graph.add_node(node)
        self._parent.append(parent)
        self._via.append(action_index)
        self._depth.append(self._depth[parent] + 1 if parent >= 0 else 0)
        return node, True

    def add_edge(self, source: int, target: int) -> None:
        self.graph.add_edge(source, target)

    def __len__(self) -> int:
        return len(self._keys)

    def depth(self, node: int) -> int:
        return self._depth[node]

    def path_indices(self, node: int) -> list[int]:
        indices: list[int] = []
        while self._parent[node] >= 0:
            indices.append(self._via[node])
            node = self._parent[node]
        indices.reverse()
        return indices

    def predecessors(self, node: int) -> Iterator[int]:
        return iter(self.graph.predecessors(node))

    def nodes(self) -> Iterator[int]:
        return iter(range(len(self._keys)))


def reaching(store: StateStore, targets: Iterable[int]) -> set[int]:
    """Every node from which some node in `targets` is reachable (reverse BFS)."""
    seen = set(targets)
    queue = deque(seen)
    while queue:
        node = queue.popleft()
        for pred in store.predecessors(node):
            if pred not in seen:
                seen.add(pred)
                queue.append(pred)
    return seen
