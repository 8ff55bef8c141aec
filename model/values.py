"""Helpers for the frozen value types the explorer hashes millions of times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def cached_hash(cls: type[T]) -> type[T]:
    """Give a frozen, slotted dataclass a hash computed once per object.

    The class declares `_hash: int = field(default=0, init=False, repr=False,
    compare=False)`.  The hash covers exactly the fields equality compares,
    so it agrees with the generated `__eq__`.
    """
    names = tuple(f.name for f in fields(cls) if f.compare)  # type: ignore[arg-type]

    def __hash__(self: Any) -> int:
        h: int = self._hash
        if not h:
            h = hash(tuple([getattr(self, name) for name in names])) or 1
            object.__setattr__(self, "_hash", h)
        return h

    hash_method: Callable[[Any], int] = __hash__
    cls.__hash__ = hash_method  # type: ignore[assignment]
    return cls
