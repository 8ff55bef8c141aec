"""TCP segments as values: the header fields the lifecycle needs, and text."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

from .seq import MASK
from .values import cached_hash


class Flags(IntFlag):
    """TCP control bits (RFC 9293 section 3.1), with their wire values."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20

    def __str__(self) -> str:
        names = [f.name for f in _ORDER if f in self and f.name is not None]
        return ",".join(names) if names else "-"


_ORDER = (Flags.SYN, Flags.FIN, Flags.RST, Flags.PSH, Flags.ACK, Flags.URG)
_FIN, _SYN, _RST, _ACK, _URG = 0x01, 0x02, 0x04, 0x10, 0x20


@cached_hash
@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """One TCP segment.  `wnd` is SEG.WND, `up` the urgent pointer field.

    The ACK field is carried even when the ACK bit is off (as on the wire),
    but no handler reads it unless the bit is set.
    """

    flags: Flags
    seq: int
    ack: int = 0
    wnd: int = 0
    payload: bytes = b""
    up: int = 0
    # The flags as a plain int: bit tests on an IntFlag go through the enum
    # machinery, which dominated exploration profiles.
    bits: int = field(default=0, init=False, repr=False, compare=False)
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", int(self.flags))
        for name in ("seq", "ack"):
            value = getattr(self, name)
            if not 0 <= value <= MASK:
                raise ValueError(f"Segment.{name}={value} is not a 32-bit sequence number")
        if not 0 <= self.wnd <= 0xFFFF:
            raise ValueError(f"Segment.wnd={self.wnd} does not fit the 16-bit window field")
        if not 0 <= self.up <= 0xFFFF:
            raise ValueError(f"Segment.up={self.up} does not fit the 16-bit urgent pointer")

    @property
    def seg_len(self) -> int:
        """SEG.LEN: octets of text plus one each for SYN and FIN."""
        return len(self.payload) + (self.bits & _SYN) // _SYN + (self.bits & _FIN)

    @property
    def syn(self) -> bool:
        return bool(self.bits & _SYN)

    @property
    def fin(self) -> bool:
        return bool(self.bits & _FIN)

    @property
    def rst(self) -> bool:
        return bool(self.bits & _RST)

    @property
    def has_ack(self) -> bool:
        return bool(self.bits & _ACK)

    @property
    def urg(self) -> bool:
        return bool(self.bits & _URG)

    def __str__(self) -> str:
        text = f"<SEQ={self.seq}>"
        if self.has_ack:
            text += f"<ACK={self.ack}>"
        text += f"<CTL={self.flags}>"
        if self.payload:
            text += f"<DATA={len(self.payload)}>"
        return text
