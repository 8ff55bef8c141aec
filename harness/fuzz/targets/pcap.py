"""Classic pcap files of raw IPv4 packets (LINKTYPE_RAW), for Wireshark/tshark and back."""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterable
from pathlib import Path

__all__ = ["LINKTYPE_IPV4", "LINKTYPE_RAW", "SNAPLEN", "read_pcap", "write_pcap"]

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
VERSION = (2, 4)
SNAPLEN = 65535
LINKTYPE_RAW = 101  # raw IPv4/IPv6, no link-layer header
LINKTYPE_IPV4 = 228  # raw IPv4 only; read as well

_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


def _timestamp(t: float, index: int) -> tuple[int, int]:
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"packet {index}: timestamp {t!r} is not a finite time >= 0")
    seconds, micros = divmod(round(t * 1_000_000), 1_000_000)
    if seconds > 0xFFFFFFFF:
        raise ValueError(f"packet {index}: timestamp {t!r} does not fit pcap's 32-bit seconds")
    return seconds, micros


def write_pcap(path: str | os.PathLike[str], packets: Iterable[tuple[float, bytes]]) -> None:
    """Write (timestamp in seconds, raw IPv4 packet) pairs as a classic pcap file.

    Timestamps are rounded to the microsecond.
    """
    chunks = [_FILE_HEADER.pack(MAGIC_USEC, *VERSION, 0, 0, SNAPLEN, LINKTYPE_RAW)]
    for index, (t, data) in enumerate(packets):
        if len(data) > SNAPLEN:
            raise ValueError(f"packet {index}: {len(data)} bytes exceed the snaplen {SNAPLEN}")
        seconds, micros = _timestamp(t, index)
        chunks.append(_RECORD_HEADER.pack(seconds, micros, len(data), len(data)))
        chunks.append(bytes(data))
    Path(path).write_bytes(b"".join(chunks))


def read_pcap(path: str | os.PathLike[str]) -> list[tuple[float, bytes]]:
    """The (timestamp, captured bytes) records of a classic pcap file of raw IP packets.

    Reads both byte orders and both the microsecond and nanosecond variants.
    Raises ValueError saying what is wrong with a file it cannot read.
    """
    raw = Path(path).read_bytes()
    if len(raw) < _FILE_HEADER.size:
        raise ValueError(
            f"{os.fspath(path)}: {len(raw)} bytes, too short for the "
            f"{_FILE_HEADER.size}-byte pcap file header"
        )
    order = ""
    for candidate in ("<", ">"):
        (magic,) = struct.unpack_from(candidate + "I", raw)
        if magic in (MAGIC_USEC, MAGIC_NSEC):
            order = candidate
            break
    else:
        raise ValueError(
            f"{os.fspath(path)}: magic 0x{raw[:4].hex()} is not a classic pcap file "
            "(pcapng is not supported)"
        )
    file_header = struct.Struct(order + "IHHiIII")
    record_header = struct.Struct(order + "IIII")
    magic, major, minor, _, _, _, linktype = file_header.unpack_from(raw)
    if major != VERSION[0]:
        raise ValueError(f"{os.fspath(path)}: pcap version {major}.{minor}, expected 2.x")
    if linktype not in (LINKTYPE_RAW, LINKTYPE_IPV4):
        raise ValueError(
            f"{os.fspath(path)}: link type {linktype}, expected raw IP "
            f"(LINKTYPE_RAW {LINKTYPE_RAW} or LINKTYPE_IPV4 {LINKTYPE_IPV4})"
        )
    fraction = 1e9 if magic == MAGIC_NSEC else 1e6
    records: list[tuple[float, bytes]] = []
    at = file_header.size
    while at < len(raw):
        index = len(records)
        if at + record_header.size > len(raw):
            raise ValueError(
                f"{os.fspath(path)}: record {index} header truncated at byte {at} "
                f"({len(raw) - at} of {record_header.size} bytes)"
            )
        seconds, frac, captured, _ = record_header.unpack_from(raw, at)
        at += record_header.size
        if at + captured > len(raw):
            raise ValueError(
                f"{os.fspath(path)}: record {index} claims {captured} bytes, "
                f"only {len(raw) - at} remain"
            )
        records.append((seconds + frac / fraction, raw[at : at + captured]))
        at += captured
    return records
