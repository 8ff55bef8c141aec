"""TCP segments as values: the header fields the lifecycle needs, and text."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

from .seq import MASK


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
NO_FLAGS = Flags(0)


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
    up: int = field(default=0)

    def __post_init__(self) -> None:
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
        return len(self.payload) + (Flags.SYN in self.flags) + (Flags.FIN in self.flags)

    @property
    def syn(self) -> bool:
        return Flags.SYN in self.flags

    @property
    def fin(self) -> bool:
        return Flags.FIN in self.flags

    @property
    def rst(self) -> bool:
        return Flags.RST in self.flags

    @property
    def has_ack(self) -> bool:
        return Flags.ACK in self.flags

    def __str__(self) -> str:
        text = f"<SEQ={self.seq}>"
        if self.has_ack:
            text += f"<ACK={self.ack}>"
        text += f"<CTL={self.flags}>"
        if self.payload:
            text += f"<DATA={len(self.payload)}>"
        return text
