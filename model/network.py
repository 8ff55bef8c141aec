"""The network between two endpoints: a bounded bag of in-flight messages per direction.

Separate from the endpoints and independent of TCP: a channel holds any
hashable, orderable messages, so the semantics can be tested on a
trivial protocol.  Each behaviour is a switch:

* loss: any in-flight message may vanish;
* duplication: a delivery may leave a copy behind, at most `dup` times in
  the whole run (a bounded count keeps exploration finite);
* reordering: any in-flight message may be delivered next; with it off the
  channel is FIFO and only the oldest may;
* capacity: at most `capacity` messages in flight per direction.  A
  message sent into a full channel is lost (a bounded network is a lossy
  network); `send` reports it so a run without loss can say the bound
  was hit.

In bag mode a channel is kept sorted, so two bags holding the same
messages are the same value (fewer states, stable fingerprints).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from .values import cached_hash

M = TypeVar("M")


class Direction(Enum):
    """A direction of travel, named after the sender."""

    C2S = "c2s"
    S2C = "s2c"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    capacity: int = 2
    dup: int = 1
    loss: bool = True
    reorder: bool = True

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"network capacity must be at least 1, not {self.capacity}")
        if self.dup < 0:
            raise ValueError(f"duplication bound must be 0 or more, not {self.dup}")

    @property
    def fifo(self) -> bool:
        return not self.reorder

    def describe(self) -> str:
        parts = [f"capacity {self.capacity}", f"dup {self.dup}"]
        parts.append("loss" if self.loss else "no loss")
        parts.append("reordering" if self.reorder else "FIFO")
        return ", ".join(parts)


@cached_hash
@dataclass(frozen=True, slots=True)
class Network(Generic[M]):
    """In-flight messages in both directions and the duplications left."""

    c2s: tuple[M, ...] = ()
    s2c: tuple[M, ...] = ()
    dups_left: int = 0
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def channel(self, direction: Direction) -> tuple[M, ...]:
        return self.c2s if direction is Direction.C2S else self.s2c

    def with_channel(self, direction: Direction, channel: tuple[M, ...]) -> Network[M]:
        if direction is Direction.C2S:
            return Network(channel, self.s2c, self.dups_left)
        return Network(self.c2s, channel, self.dups_left)

    @property
    def empty(self) -> bool:
        return not self.c2s and not self.s2c

    def __len__(self) -> int:
        return len(self.c2s) + len(self.s2c)


def initial(cfg: NetworkConfig) -> Network[M]:
    return Network(dups_left=cfg.dup)


def send(
    net: Network[M], cfg: NetworkConfig, direction: Direction, msg: M
) -> tuple[Network[M], bool]:
    """Put `msg` in flight.  Returns the network and whether it overflowed (was lost)."""
    channel = net.channel(direction)
    if len(channel) >= cfg.capacity:
        return net, True
    if cfg.reorder:
        return net.with_channel(direction, tuple(sorted((*channel, msg)))), False  # type: ignore[type-var]
    return net.with_channel(direction, (*channel, msg)), False


def deliverable(net: Network[M], cfg: NetworkConfig, direction: Direction) -> Iterator[M]:
    """The messages that may arrive next in `direction`, each distinct one once."""
    channel = net.channel(direction)
    if not channel:
        return
    if not cfg.reorder:
        yield channel[0]
        return
    previous: object = _NOTHING
    for msg in channel:
        if msg != previous:
            yield msg
        previous = msg


def can_duplicate(net: Network[M]) -> bool:
    return net.dups_left > 0


def remove(net: Network[M], direction: Direction, msg: M) -> Network[M]:
    """Take one copy of `msg` out of the channel (delivered or lost)."""
    channel = net.channel(direction)
    index = channel.index(msg)  # ValueError if it is not in flight
    return net.with_channel(direction, channel[:index] + channel[index + 1 :])


def deliver(net: Network[M], direction: Direction, msg: M, keep_copy: bool) -> Network[M]:
    """Deliver `msg`; with `keep_copy` a duplicate stays in flight (uses one dup)."""
    if keep_copy:
        if net.dups_left <= 0:
            raise ValueError("no duplications left")
        if msg not in net.channel(direction):
            raise ValueError(f"{msg!r} is not in flight {direction}")
        return Network(net.c2s, net.s2c, net.dups_left - 1)
    return remove(net, direction, msg)


class _Nothing:
    pass


_NOTHING = _Nothing()
