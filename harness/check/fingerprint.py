"""Content fingerprints of system states, stable across processes and runs.

Python's hash() of strings and enums changes with PYTHONHASHSEED, and a
frozenset's iteration order with it, so neither can name a state outside
one process.  `fingerprint` encodes a state canonically (dataclass fields
in declaration order, sets sorted, enums by value, bytes as hex) and
hashes that with BLAKE2b.  The explorer de-duplicates with cheaper
in-process keys; fingerprints name states in reports.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any


def canonical(value: Any) -> str:
    """A text encoding of a model value that does not depend on the process."""
    if is_dataclass(value) and not isinstance(value, type):
        parts = [
            f"{f.name}={canonical(getattr(value, f.name))}" for f in fields(value) if f.compare
        ]
        return f"{type(value).__name__}({','.join(parts)})"
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, bytes):
        return f"b'{value.hex()}'"
    if isinstance(value, (frozenset, set)):
        return "{" + ",".join(sorted(canonical(v) for v in value)) + "}"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(canonical(v) for v in value) + ")"
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    raise TypeError(f"no canonical form for {type(value).__name__}")


def fingerprint(value: Any) -> str:
    """16 hex digits naming a state (or any model value) by its content."""
    return hashlib.blake2b(canonical(value).encode(), digest_size=8).hexdigest()
