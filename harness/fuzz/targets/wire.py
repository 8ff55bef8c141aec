"""IPv4 + TCP on the wire: encode a model `Segment` as a raw IPv4 packet, decode it back.

`encode` always writes a 20-byte IPv4 header (DF set, protocol 6) and a TCP
header with correct checksums.  `decode` checks everything a receiving stack
would check before handing the segment to TCP, and raises `MalformedPacket`
(and nothing else) on any input it refuses.

`decode(encode(p)) == p` for every valid `Packet` whose options contain no
EOL: an EOL ends the option list, and what follows it is padding.  Going the
other way, `decode` drops what `Packet` does not carry (TOS, the DF and
reserved bits, IPv4 options, bytes after an EOL, trailing bytes past the
IPv4 total length).
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from synack.model.segment import Flags, Segment

__all__ = [
    "EXTRA_FLAGS_MASK",
    "OPT_EOL",
    "OPT_MSS",
    "OPT_NOP",
    "MalformedPacket",
    "Packet",
    "TcpOption",
    "decode",
    "describe",
    "encode",
    "internet_checksum",
    "mss_option",
    "option_mss",
]

OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
_OPT_WSCALE = 3
_OPT_SACK_OK = 4
_OPT_TIMESTAMP = 8

PROTO_TCP = 6
IPV4_HEADER_LEN = 20
TCP_HEADER_LEN = 20
MAX_OPTION_BYTES = 40
MAX_IPV4_LEN = 0xFFFF

_IP_DF = 0x4000
_IP_MF = 0x2000
_IP_OFFSET = 0x1FFF

SEGMENT_FLAGS_MASK = 0x03F
# The TCP header's other flag bits: ECE 0x40, CWR 0x80, AE (formerly NS)
# 0x100, and the three still-reserved bits 0xE00, kept so a decoded packet
# loses no header bit.
EXTRA_FLAGS_MASK = 0xFC0
_EXTRA_NAMES = ((0x40, "ECE"), (0x80, "CWR"), (0x100, "AE"), (0xE00, "RSV"))

_IP_HEADER = struct.Struct("!BBHHHBBH4s4s")
_TCP_HEADER = struct.Struct("!HHIIHHHH")
_PSEUDO_HEADER = struct.Struct("!4s4sBBH")
_IP_CHECKSUM_AT = 10
_TCP_CHECKSUM_AT = 16


class MalformedPacket(ValueError):
    """Bytes that are not a well-formed, unfragmented IPv4 packet carrying TCP."""


def internet_checksum(data: bytes) -> int:
    """RFC 1071: the ones' complement of the ones' complement sum of 16-bit words.

    An odd trailing byte is padded with a zero byte.  A buffer that already
    holds a correct checksum sums to 0xFFFF, so its checksum is 0.
    """
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True, slots=True)
class TcpOption:
    """One TCP option.  EOL (0) and NOP (1) are single bytes; every other kind
    is written kind, length, data with length = 2 + len(data)."""

    kind: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.kind <= 0xFF:
            raise ValueError(f"TCP option kind {self.kind} does not fit a byte")
        if self.kind in (OPT_EOL, OPT_NOP) and self.data:
            raise ValueError(f"TCP option kind {self.kind} is a single byte and carries no data")
        if len(self.data) > 0xFF - 2:
            raise ValueError(
                f"TCP option kind {self.kind}: {len(self.data)} data bytes do not fit "
                "the one-byte length field"
            )

    def encode(self) -> bytes:
        if self.kind in (OPT_EOL, OPT_NOP):
            return bytes((self.kind,))
        return bytes((self.kind, len(self.data) + 2)) + self.data


def mss_option(value: int) -> TcpOption:
    """The maximum segment size option (kind 2, length 4)."""
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"MSS {value} does not fit 16 bits")
    return TcpOption(OPT_MSS, struct.pack("!H", value))


def option_mss(options: Iterable[TcpOption]) -> int | None:
    """The value of the first MSS option, or None if there is none.

    Raises MalformedPacket if that option's length is not 4.
    """
    for option in options:
        if option.kind == OPT_MSS:
            if len(option.data) != 2:
                raise MalformedPacket(f"MSS option length {len(option.data) + 2} != 4")
            value: int = struct.unpack("!H", option.data)[0]
            return value
    return None


def _encode_options(options: Iterable[TcpOption]) -> bytes:
    block = b"".join(option.encode() for option in options)
    if len(block) > MAX_OPTION_BYTES:
        raise ValueError(f"TCP options take {len(block)} bytes, more than {MAX_OPTION_BYTES}")
    return block + bytes(-len(block) % 4)


def _decode_options(block: bytes) -> tuple[TcpOption, ...]:
    options: list[TcpOption] = []
    at = 0
    while at < len(block):
        kind = block[at]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            options.append(TcpOption(OPT_NOP))
            at += 1
            continue
        if at + 1 >= len(block):
            raise MalformedPacket(
                f"TCP option kind {kind} at offset {at} has no length byte "
                f"(the option block ends after {len(block)} bytes)"
            )
        length = block[at + 1]
        if length < 2:
            raise MalformedPacket(f"TCP option kind {kind} at offset {at}: length {length} < 2")
        if at + length > len(block):
            raise MalformedPacket(
                f"TCP option kind {kind} at offset {at}: length {length} runs past "
                f"the {len(block)}-byte option block"
            )
        options.append(TcpOption(kind, block[at + 2 : at + length]))
        at += length
    return tuple(options)


def _address(text: str, what: str) -> bytes:
    try:
        return _packed(text)
    except ValueError as exc:
        raise ValueError(f"Packet.{what}={text!r} is not an IPv4 address: {exc}") from None


@functools.lru_cache(maxsize=256)
def _packed(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


@functools.lru_cache(maxsize=256)
def _dotted(packed: bytes) -> str:
    return str(ipaddress.IPv4Address(packed))


@dataclass(frozen=True, slots=True)
class Packet:
    """An IPv4 packet carrying one TCP segment.

    `extra_flags` holds the TCP flag bits `Segment` does not carry (ECE 0x40,
    CWR 0x80, AE 0x100, reserved 0xE00), at their header-word positions.
    """

    src: str
    dst: str
    sport: int
    dport: int
    segment: Segment
    options: tuple[TcpOption, ...] = ()
    extra_flags: int = 0
    ttl: int = 64
    ip_id: int = 0

    def __post_init__(self) -> None:
        _address(self.src, "src")
        _address(self.dst, "dst")
        for name in ("sport", "dport", "ip_id"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"Packet.{name}={value} does not fit 16 bits")
        if not 0 <= self.ttl <= 0xFF:
            raise ValueError(f"Packet.ttl={self.ttl} does not fit 8 bits")
        if self.extra_flags & ~EXTRA_FLAGS_MASK:
            raise ValueError(
                f"Packet.extra_flags={self.extra_flags:#x} has bits outside "
                f"{EXTRA_FLAGS_MASK:#x} (the segment's own flags belong in Segment.flags)"
            )
        if self.segment.bits & ~SEGMENT_FLAGS_MASK:
            raise ValueError(f"Segment flags {self.segment.bits:#x} have bits outside 0x3f")


def _tcp_checksum(src: bytes, dst: bytes, tcp: bytes) -> int:
    pseudo = _PSEUDO_HEADER.pack(src, dst, 0, PROTO_TCP, len(tcp))
    return internet_checksum(pseudo + tcp)


def encode(pkt: Packet) -> bytes:
    """The packet as raw IPv4 bytes, both checksums filled in."""
    src, dst = _address(pkt.src, "src"), _address(pkt.dst, "dst")
    segment = pkt.segment
    options = _encode_options(pkt.options)
    header_len = TCP_HEADER_LEN + len(options)
    total_len = IPV4_HEADER_LEN + header_len + len(segment.payload)
    if total_len > MAX_IPV4_LEN:
        raise ValueError(
            f"packet of {total_len} bytes exceeds the IPv4 limit of {MAX_IPV4_LEN} "
            f"({len(segment.payload)} payload bytes)"
        )
    offset_flags = (header_len // 4) << 12 | pkt.extra_flags | segment.bits
    tcp_header = _TCP_HEADER.pack(
        pkt.sport, pkt.dport, segment.seq, segment.ack, offset_flags, segment.wnd, 0, segment.up
    )
    tcp = bytearray(tcp_header + options + segment.payload)
    struct.pack_into("!H", tcp, _TCP_CHECKSUM_AT, _tcp_checksum(src, dst, bytes(tcp)))
    ip = bytearray(
        _IP_HEADER.pack(0x45, 0, total_len, pkt.ip_id, _IP_DF, pkt.ttl, PROTO_TCP, 0, src, dst)
    )
    struct.pack_into("!H", ip, _IP_CHECKSUM_AT, internet_checksum(bytes(ip)))
    return bytes(ip + tcp)


def decode(data: bytes) -> Packet:
    """Parse and check one raw IPv4 packet; MalformedPacket says what is wrong."""
    data = bytes(data)
    if len(data) < IPV4_HEADER_LEN:
        raise MalformedPacket(
            f"truncated: {len(data)} bytes received, an IPv4 header needs {IPV4_HEADER_LEN}"
        )
    version, ihl = data[0] >> 4, data[0] & 0x0F
    if version != 4:
        raise MalformedPacket(f"not IPv4 (version {version})")
    if ihl < 5:
        raise MalformedPacket(f"IPv4 header length (IHL) {ihl} < 5")
    ip_header_len = ihl * 4
    if ip_header_len > len(data):
        raise MalformedPacket(
            f"truncated: IPv4 header length {ip_header_len} > {len(data)} bytes received"
        )
    (_, _, total_len, ip_id, frag, ttl, proto, stored, src, dst) = _IP_HEADER.unpack_from(data)
    if internet_checksum(data[:ip_header_len]) != 0:
        header = data[:_IP_CHECKSUM_AT] + b"\x00\x00" + data[_IP_CHECKSUM_AT + 2 : ip_header_len]
        computed = internet_checksum(header)
        raise MalformedPacket(f"IPv4 header checksum {stored:#06x} != computed {computed:#06x}")
    if total_len < ip_header_len:
        raise MalformedPacket(f"IPv4 total length {total_len} < header length {ip_header_len}")
    if total_len > len(data):
        raise MalformedPacket(f"truncated: total length {total_len} > {len(data)} bytes received")
    if frag & (_IP_MF | _IP_OFFSET):
        raise MalformedPacket(
            f"fragmented packet (more-fragments={int(bool(frag & _IP_MF))}, "
            f"fragment offset={(frag & _IP_OFFSET) * 8} bytes)"
        )
    if proto != PROTO_TCP:
        raise MalformedPacket(f"not TCP (protocol {proto})")

    tcp = data[ip_header_len:total_len]
    if len(tcp) < TCP_HEADER_LEN:
        raise MalformedPacket(
            f"truncated: TCP header needs {TCP_HEADER_LEN} bytes, the segment has {len(tcp)}"
        )
    sport, dport, seq, ack, offset_flags, wnd, checksum, up = _TCP_HEADER.unpack_from(tcp)
    if internet_checksum(_PSEUDO_HEADER.pack(src, dst, 0, PROTO_TCP, len(tcp)) + tcp) != 0:
        zeroed = tcp[:_TCP_CHECKSUM_AT] + b"\x00\x00" + tcp[_TCP_CHECKSUM_AT + 2 :]
        raise MalformedPacket(
            f"TCP checksum {checksum:#06x} != computed {_tcp_checksum(src, dst, zeroed):#06x}"
        )
    data_offset = offset_flags >> 12
    if data_offset < 5:
        raise MalformedPacket(f"TCP data offset {data_offset} < 5")
    tcp_header_len = data_offset * 4
    if tcp_header_len > len(tcp):
        raise MalformedPacket(
            f"TCP data offset {data_offset} ({tcp_header_len} bytes) runs past "
            f"the {len(tcp)}-byte segment"
        )
    options = _decode_options(tcp[TCP_HEADER_LEN:tcp_header_len])
    segment = Segment(
        Flags(offset_flags & SEGMENT_FLAGS_MASK), seq, ack, wnd, tcp[tcp_header_len:], up
    )
    return Packet(
        src=_dotted(src),
        dst=_dotted(dst),
        sport=sport,
        dport=dport,
        segment=segment,
        options=options,
        extra_flags=offset_flags & EXTRA_FLAGS_MASK,
        ttl=ttl,
        ip_id=ip_id,
    )


def _describe_option(option: TcpOption) -> str:
    kind, data = option.kind, option.data
    if kind == OPT_NOP:
        return "nop"
    if kind == OPT_EOL:
        return "eol"
    if kind == OPT_MSS and len(data) == 2:
        return f"mss={int.from_bytes(data, 'big')}"
    if kind == _OPT_WSCALE and len(data) == 1:
        return f"wscale={data[0]}"
    if kind == _OPT_SACK_OK and not data:
        return "sackOK"
    if kind == _OPT_TIMESTAMP and len(data) == 8:
        return f"ts={int.from_bytes(data[:4], 'big')}/{int.from_bytes(data[4:], 'big')}"
    return f"opt{kind}={data.hex()}" if data else f"opt{kind}"


def describe(pkt: Packet) -> str:
    """One line: addresses, the segment as the model prints it, window and options."""
    parts = [f"{pkt.src}:{pkt.sport} > {pkt.dst}:{pkt.dport} {pkt.segment}"]
    extra = [name for bit, name in _EXTRA_NAMES if pkt.extra_flags & bit]
    if extra:
        parts.append(f"+{','.join(extra)}")
    parts.append(f"wnd={pkt.segment.wnd}")
    if pkt.segment.urg or pkt.segment.up:
        parts.append(f"up={pkt.segment.up}")
    parts.extend(_describe_option(option) for option in pkt.options)
    return " ".join(parts)
