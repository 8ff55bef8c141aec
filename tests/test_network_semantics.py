"""The network layer alone, on a trivial counting protocol.

A sender puts messages 1..3 into the network one at a time; a receiver
records every delivery.  Exploring every interleaving gives the set of
delivery sequences a semantics allows, which must be exactly the set the
semantics promises: FIFO keeps order, loss drops any subset, reordering
permutes, duplication repeats at most `dup` deliveries, and the capacity
bounds what can be in flight at once.
"""

from __future__ import annotations

from collections import deque
from itertools import combinations, permutations

import pytest

from synack.model import network as net
from synack.model.network import Direction, Network, NetworkConfig

N = 3
C2S = Direction.C2S
State = tuple[int, Network[int], tuple[int, ...]]  # next to send, network, delivered


def delivery_sequences(cfg: NetworkConfig) -> set[tuple[int, ...]]:
    """Every delivered sequence in a final state (all sent, nothing in flight)."""
    start: State = (1, net.initial(cfg), ())
    seen = {start}
    queue = deque([start])
    finals: set[tuple[int, ...]] = set()
    while queue:
        nxt, n, delivered = queue.popleft()
        succ: list[State] = []
        if nxt <= N:
            sent, _ = net.send(n, cfg, C2S, nxt)
            succ.append((nxt + 1, sent, delivered))
        for msg in net.deliverable(n, cfg, C2S):
            succ.append((nxt, net.deliver(n, C2S, msg, keep_copy=False), (*delivered, msg)))
            if net.can_duplicate(n):
                succ.append((nxt, net.deliver(n, C2S, msg, keep_copy=True), (*delivered, msg)))
            if cfg.loss:
                succ.append((nxt, net.remove(n, C2S, msg), delivered))
        if nxt > N and n.empty:
            finals.add(delivered)
        for s in succ:
            if s not in seen:
                seen.add(s)
                queue.append(s)
    return finals


def subsequences(seq: tuple[int, ...]) -> set[tuple[int, ...]]:
    return {c for r in range(len(seq) + 1) for c in combinations(seq, r)}


ORDER = tuple(range(1, N + 1))


def test_fifo_without_loss_or_dup_delivers_in_order_once() -> None:
    cfg = NetworkConfig(capacity=N, dup=0, loss=False, reorder=False)
    assert delivery_sequences(cfg) == {ORDER}


def test_reordering_gives_every_permutation() -> None:
    cfg = NetworkConfig(capacity=N, dup=0, loss=False, reorder=True)
    assert delivery_sequences(cfg) == set(permutations(ORDER))


def test_loss_gives_every_ordered_subsequence() -> None:
    cfg = NetworkConfig(capacity=N, dup=0, loss=True, reorder=False)
    assert delivery_sequences(cfg) == subsequences(ORDER)


def test_loss_and_reordering_give_every_arrangement_of_every_subset() -> None:
    cfg = NetworkConfig(capacity=N, dup=0, loss=True, reorder=True)
    expected = {p for sub in subsequences(ORDER) for p in permutations(sub)}
    assert delivery_sequences(cfg) == expected


def test_fifo_duplication_repeats_one_delivery_at_most_once() -> None:
    cfg = NetworkConfig(capacity=N, dup=1, loss=False, reorder=False)
    repeated = {ORDER[: i + 1] + ORDER[i:] for i in range(N)}  # the copy stays at the head
    assert delivery_sequences(cfg) == {ORDER} | repeated


@pytest.mark.parametrize("dup", [1, 2])
def test_duplication_bound_counts_extra_deliveries(dup: int) -> None:
    cfg = NetworkConfig(capacity=N, dup=dup, loss=False, reorder=True)
    sequences = delivery_sequences(cfg)
    assert max(len(s) for s in sequences) == N + dup
    assert all(set(s) == set(ORDER) for s in sequences), "no loss: every message arrives"
    assert all(len(s) - N <= dup for s in sequences)


def test_capacity_one_forces_order_even_when_reordering() -> None:
    """One slot: a message must arrive (or overflow) before the next can be in flight."""
    cfg = NetworkConfig(capacity=1, dup=0, loss=False, reorder=True)
    # A send into the full channel is lost (overflow); the first message always
    # finds the channel empty, so exactly the ordered subsequences holding 1 remain.
    assert delivery_sequences(cfg) == {s for s in subsequences(ORDER) if 1 in s}
