"""The network layer on its own, with plain integers as messages."""

from __future__ import annotations

import pytest

from synack.model import network as net
from synack.model.network import Direction, Network, NetworkConfig

C2S = Direction.C2S


def _load(cfg: NetworkConfig, *msgs: int) -> Network[int]:
    n: Network[int] = net.initial(cfg)
    for m in msgs:
        n, overflowed = net.send(n, cfg, C2S, m)
        assert not overflowed
    return n


def test_bag_delivers_any_distinct_message_once() -> None:
    cfg = NetworkConfig(capacity=4, reorder=True)
    n = _load(cfg, 3, 1, 3)
    assert list(net.deliverable(n, cfg, C2S)) == [1, 3]
    assert n.c2s == (1, 3, 3), "bag channels are kept sorted"


def test_fifo_delivers_oldest_only() -> None:
    cfg = NetworkConfig(capacity=4, reorder=False)
    n = _load(cfg, 3, 1, 2)
    assert list(net.deliverable(n, cfg, C2S)) == [3]
    assert cfg.fifo


def test_capacity_overflow_is_reported_and_loses_the_message() -> None:
    cfg = NetworkConfig(capacity=1)
    n = _load(cfg, 7)
    n2, overflowed = net.send(n, cfg, C2S, 8)
    assert overflowed and n2 == n


def test_duplication_is_bounded() -> None:
    cfg = NetworkConfig(capacity=2, dup=1)
    n = _load(cfg, 5)
    n = net.deliver(n, C2S, 5, keep_copy=True)
    assert n.c2s == (5,) and n.dups_left == 0
    assert not net.can_duplicate(n)
    with pytest.raises(ValueError):
        net.deliver(n, C2S, 5, keep_copy=True)
    n = net.deliver(n, C2S, 5, keep_copy=False)
    assert n.empty


def test_remove_absent_message_is_an_error() -> None:
    with pytest.raises(ValueError):
        net.remove(net.initial(NetworkConfig()), C2S, 1)


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="capacity"):
        NetworkConfig(capacity=0)
    with pytest.raises(ValueError, match="duplication"):
        NetworkConfig(dup=-1)
