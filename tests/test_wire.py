"""IPv4 + TCP encoding (fuzz/targets/wire.py) and pcap files (fuzz/targets/pcap.py)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synack.harness.fuzz.targets.pcap import read_pcap, write_pcap
from synack.harness.fuzz.targets.wire import (
    MalformedPacket,
    Packet,
    TcpOption,
    decode,
    describe,
    encode,
    internet_checksum,
    mss_option,
    option_mss,
)
from synack.model.segment import Flags, Segment

from .util import require_tool

# Strategies --------------------------------------------------------------------------------

BENCH_NET = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544 benchmarking addresses

addresses = st.integers(0, BENCH_NET.num_addresses - 1).map(
    lambda i: str(BENCH_NET.network_address + i)
)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
segments = st.builds(
    Segment,
    flags=st.integers(0, 0x3F).map(Flags),  # every combination, nonsensical ones too
    seq=u32,
    ack=u32,
    wnd=u16,
    payload=st.binary(max_size=200),
    up=u16,
)


@st.composite
def option_lists(draw: st.DrawFn) -> tuple[TcpOption, ...]:
    """Options without EOL (an EOL ends the list) that fit the 40-byte option space."""
    budget = 40
    options: list[TcpOption] = []
    while budget > 0 and draw(st.integers(0, 3)) > 0:
        if budget < 2 or draw(st.booleans()):
            options.append(TcpOption(1))
            budget -= 1
            continue
        kind = draw(st.integers(2, 255))
        data = draw(st.binary(max_size=min(budget - 2, 12)))
        options.append(TcpOption(kind, data))
        budget -= 2 + len(data)
    return tuple(options)


packets = st.builds(
    Packet,
    src=addresses,
    dst=addresses,
    sport=u16,
    dport=u16,
    segment=segments,
    options=option_lists(),
    extra_flags=st.integers(0, 0x3F).map(lambda bits: bits << 6),
    ttl=st.integers(0, 255),
    ip_id=u16,
)
encoded = packets.map(encode)


def decode_or_none(data: bytes) -> Packet | None:
    """decode, with MalformedPacket as None: any other exception fails the test."""
    try:
        return decode(data)
    except MalformedPacket:
        return None


def refix(data: bytes | bytearray) -> bytes:
    """Recompute both checksums of a (possibly odd) packet in place, as far as it has them."""
    b = bytearray(data)
    ihl = (b[0] & 0x0F) * 4
    b[10:12] = b"\x00\x00"
    b[10:12] = internet_checksum(bytes(b[:ihl])).to_bytes(2, "big")
    total = int.from_bytes(b[2:4], "big")
    tcp = b[ihl:total]
    if len(tcp) >= 18:
        tcp[16:18] = b"\x00\x00"
        pseudo = bytes(b[12:20]) + bytes((0, 6)) + len(tcp).to_bytes(2, "big")
        b[ihl + 16 : ihl + 18] = internet_checksum(pseudo + bytes(tcp)).to_bytes(2, "big")
    return bytes(b)


def syn(**changes: object) -> Packet:
    fields: dict[str, object] = {
        "src": "198.18.0.2",
        "dst": "198.18.0.1",
        "sport": 40000,
        "dport": 5000,
        "segment": Segment(Flags.SYN, 1, 0, 64240),
        "options": (mss_option(1460),),
    }
    fields.update(changes)
    return Packet(**fields)  # type: ignore[arg-type]


# Round trips -------------------------------------------------------------------------------


@settings(max_examples=200)
@given(packets)
def test_round_trip(pkt: Packet) -> None:
    data = encode(pkt)
    assert decode(data) == pkt
    assert encode(decode(data)) == data
    assert internet_checksum(data[:20]) == 0


@settings(max_examples=100)
@given(encoded, st.binary(min_size=1, max_size=16))
def test_trailing_bytes_past_total_length_are_ignored(data: bytes, padding: bytes) -> None:
    assert decode(data + padding) == decode(data)


def test_ip_options_are_skipped() -> None:
    data = encode(syn())
    with_options = bytearray(data[:20] + b"\x01\x01\x01\x00" + data[20:])  # NOP NOP NOP EOL
    with_options[0] = 0x46
    with_options[2:4] = (len(data) + 4).to_bytes(2, "big")
    assert decode(refix(with_options)) == syn()


def test_eol_ends_the_option_list() -> None:
    pkt = syn(options=(TcpOption(1), TcpOption(0), mss_option(1460)))
    assert decode(encode(pkt)).options == (TcpOption(1),)


def test_option_block_is_padded_with_zeros() -> None:
    data = encode(syn(options=(TcpOption(1), TcpOption(3, b"\x07"))))
    assert data[20 + 12] >> 4 == 6  # data offset: 20 + 4 option bytes
    assert data[40:44] == b"\x01\x03\x03\x07"
    data = encode(syn(options=(TcpOption(4),)))
    assert data[40:44] == b"\x04\x02\x00\x00"


def test_mss_helpers() -> None:
    assert mss_option(1460) == TcpOption(2, b"\x05\xb4")
    assert option_mss((TcpOption(1), mss_option(536), mss_option(9000))) == 536
    assert option_mss((TcpOption(1),)) is None
    with pytest.raises(MalformedPacket, match="MSS option length 3 != 4"):
        option_mss((TcpOption(2, b"\x05"),))
    with pytest.raises(ValueError):
        mss_option(70000)


def test_describe() -> None:
    pkt = syn(segment=Segment(Flags.SYN | Flags.ACK, 1, 2, 64240))
    assert describe(pkt) == (
        "198.18.0.2:40000 > 198.18.0.1:5000 <SEQ=1><ACK=2><CTL=SYN,ACK> wnd=64240 mss=1460"
    )
    pkt = syn(
        segment=Segment(Flags.ACK | Flags.URG, 5, 6, 100, b"xy", up=1),
        options=(TcpOption(1), TcpOption(8, bytes(range(8))), TcpOption(99, b"\xab")),
        extra_flags=0xC0,
    )
    assert describe(pkt) == (
        "198.18.0.2:40000 > 198.18.0.1:5000 <SEQ=5><ACK=6><CTL=ACK,URG><DATA=2> +ECE,CWR "
        "wnd=100 up=1 nop ts=66051/67438087 opt99=ab"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"src": "198.18.0.300"}, "Packet.src"),
        ({"sport": 65536}, "Packet.sport"),
        ({"ttl": 256}, "Packet.ttl"),
        ({"extra_flags": 0x10}, "extra_flags"),
        ({"segment": Segment(Flags(0x40), 0)}, "outside 0x3f"),
    ],
    ids=["src", "sport", "ttl", "extra_flags", "segment-flags"],
)
def test_packet_validates_fields(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        syn(**changes)


def test_encode_rejects_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="41 bytes, more than 40"):
        encode(syn(options=(TcpOption(99, bytes(39)),)))
    with pytest.raises(ValueError, match="exceeds the IPv4 limit"):
        encode(syn(segment=Segment(Flags.ACK, 0, payload=bytes(65535))))
    with pytest.raises(ValueError, match="single byte"):
        TcpOption(1, b"x")


# Checksums: known vectors, computed by RFC 1071's definition in the test ------------------


def ones_complement_sum(data: bytes) -> int:
    """RFC 1071 section 1: add 16-bit big-endian words, carries wrapped back in."""
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | (data[i + 1] if i + 1 < len(data) else 0)
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_rfc1071_examples() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    words = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(words) == 0xDDF2
    assert internet_checksum(words) == 0xDDF2 ^ 0xFFFF == 0x220D
    # Odd length: the last byte is padded with zero.
    assert internet_checksum(b"\x01") == 0xFEFF
    # The textbook IPv4 header (checksum field zeroed) whose checksum is b861.
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert internet_checksum(header) == 0xB861
    assert internet_checksum(header[:10] + b"\xb8\x61" + header[12:]) == 0


def test_known_syn_vector() -> None:
    # 198.18.0.2:40000 > 198.18.0.1:5000 SYN seq=100 wnd=64240, ip_id 0x1234,
    # options MSS 1460, NOP, NOP, SACK-permitted: 20 + 28 bytes.
    pkt = syn(
        segment=Segment(Flags.SYN, 100, 0, 64240),
        options=(mss_option(1460), TcpOption(1), TcpOption(1), TcpOption(4)),
        ip_id=0x1234,
    )
    ip = bytes.fromhex("450000301234400040060000c6120002c6120001")
    tcp = bytes.fromhex("9c40138800000064000000007002faf000000000020405b401010402")
    # IPv4: 4500+0030+1234+4000+4006+0000+c612+0002+c612+0001 = 0x26391 -> 0x6393.
    assert ones_complement_sum(ip) == 0x6393
    ip_checksum = 0x6393 ^ 0xFFFF
    assert ip_checksum == 0x9C6C
    # TCP: pseudo-header (src, dst, zero, protocol 6, TCP length 28) then the segment.
    pseudo = bytes.fromhex("c6120002c61200010006001c")
    assert ones_complement_sum(pseudo + tcp) == 0xB425
    tcp_checksum = 0xB425 ^ 0xFFFF
    assert tcp_checksum == 0x4BDA

    expected = ip[:10] + b"\x9c\x6c" + ip[12:] + tcp[:16] + b"\x4b\xda" + tcp[18:]
    assert encode(pkt) == expected
    assert decode(expected) == pkt
    assert ones_complement_sum(expected[:20]) == 0xFFFF
    assert ones_complement_sum(pseudo + expected[20:]) == 0xFFFF


# Malformed input -----------------------------------------------------------------------------


def test_checksum_error_messages() -> None:
    data = bytearray(encode(syn()))
    good_ip = int.from_bytes(data[10:12], "big")
    data[10:12] = b"\x12\x34"
    with pytest.raises(
        MalformedPacket, match=f"IPv4 header checksum 0x1234 != computed {good_ip:#06x}"
    ):
        decode(bytes(data))
    data = bytearray(encode(syn()))
    good_tcp = int.from_bytes(data[36:38], "big")
    data[36:38] = (good_tcp ^ 0x0101).to_bytes(2, "big")
    with pytest.raises(MalformedPacket, match=f"TCP checksum .* != computed {good_tcp:#06x}"):
        decode(bytes(data))


def crafted(offset: int, value: bytes, *, total: int | None = None) -> bytes:
    """The standard SYN with bytes overwritten at `offset`, checksums made right again."""
    b = bytearray(encode(syn()))
    b[offset : offset + len(value)] = value
    if total is not None:
        b[2:4] = total.to_bytes(2, "big")
    return refix(b)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"truncated: 0 bytes received, an IPv4 header needs 20"),
        (b"\x60" + bytes(39), r"not IPv4 \(version 6\)"),
        (crafted(0, b"\x44"), r"IHL\) 4 < 5"),
        (crafted(0, b"\x4f"), r"truncated: IPv4 header length 60 > 44 bytes received"),
        (encode(syn())[:40], r"truncated: total length 44 > 40 bytes received"),
        (crafted(0, b"", total=16), r"total length 16 < header length 20"),
        (crafted(6, b"\x20\x00"), r"fragmented packet \(more-fragments=1"),
        (crafted(6, b"\x40\x01"), r"fragmented packet .*offset=8 bytes"),
        (crafted(9, b"\x11"), r"not TCP \(protocol 17\)"),
        (crafted(0, b"", total=30), r"TCP header needs 20 bytes, the segment has 10"),
        (crafted(32, b"\x30"), r"TCP data offset 3 < 5"),
        (crafted(32, b"\x40"), r"TCP data offset 4 < 5"),
        (crafted(32, b"\xf0"), r"TCP data offset 15 \(60 bytes\) runs past the 24-byte segment"),
        (crafted(40, b"\x02\x01"), r"TCP option kind 2 at offset 0: length 1 < 2"),
        (crafted(40, b"\x02\x05"), r"length 5 runs past the 4-byte option block"),
        (crafted(40, b"\x01\x01\x01\x02"), r"kind 2 at offset 3 has no length byte"),
    ],
    ids=[
        "empty",
        "ipv6",
        "ihl-4",
        "ihl-past-buffer",
        "truncated",
        "total-below-header",
        "more-fragments",
        "fragment-offset",
        "udp",
        "tcp-header-truncated",
        "data-offset-3",
        "data-offset-4",
        "data-offset-past-segment",
        "option-length-1",
        "option-past-block",
        "option-without-length",
    ],
)
def test_malformed_messages(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=message):
        decode(data)


@settings(max_examples=200)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    decode_or_none(data)


@settings(max_examples=200)
@given(st.data())
def test_any_single_byte_change_is_detected(data: st.DataObject) -> None:
    packet = data.draw(encoded)
    at = data.draw(st.integers(0, len(packet) - 1))
    mask = data.draw(st.integers(1, 255))
    changed = bytearray(packet)
    changed[at] ^= mask
    with pytest.raises(MalformedPacket):
        decode(bytes(changed))


@settings(max_examples=200)
@given(st.data())
def test_truncation_is_detected(data: st.DataObject) -> None:
    packet = data.draw(encoded)
    cut = data.draw(st.integers(0, len(packet) - 1))
    with pytest.raises(MalformedPacket, match="truncated"):
        decode(packet[:cut])


@settings(max_examples=200)
@given(
    encoded,
    st.lists(
        st.tuples(
            st.sampled_from(["set", "insert", "delete"]), st.integers(0), st.integers(0, 255)
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_mutations_raise_only_malformed(
    packet: bytes, edits: list[tuple[str, int, int]], fix_checksums: bool
) -> None:
    b = bytearray(packet)
    for op, at, value in edits:
        at %= len(b) + 1
        if op == "insert":
            b.insert(at, value)
        elif at < len(b):
            if op == "set":
                b[at] = value
            else:
                del b[at]
    if fix_checksums and len(b) >= 20 and (b[0] & 0x0F) * 4 <= len(b):
        b = bytearray(refix(b))  # let the mutation reach the checks behind the checksums
    decoded = decode_or_none(bytes(b))
    if decoded is not None:
        assert decode(encode(decoded)) == decoded


option_bytes = st.lists(
    st.one_of(st.sampled_from([0, 1, 2, 3, 4, 8, 255]), st.integers(0, 255)), max_size=40
).map(bytes)


@settings(max_examples=200)
@given(
    packet=encoded,
    ihl=st.one_of(st.none(), st.integers(0, 15)),
    frag=st.one_of(st.none(), st.sampled_from([0x0000, 0x2000, 0x0001, 0x8000])),
    proto=st.one_of(st.none(), st.integers(0, 255)),
    total_delta=st.one_of(st.none(), st.integers(-30, 8)),
    tcp_options=st.one_of(st.none(), option_bytes),
    data_offset=st.one_of(st.none(), st.integers(0, 15)),
    filler=st.binary(min_size=60, max_size=60),
)
def test_checksummed_garbage_raises_only_malformed(
    packet: bytes,
    ihl: int | None,
    frag: int | None,
    proto: int | None,
    total_delta: int | None,
    tcp_options: bytes | None,
    data_offset: int | None,
    filler: bytes,
) -> None:
    """Valid packets with header fields and TCP options replaced by odd values, then both
    checksums made right, so the checks behind the checksums run on garbage."""
    ip, tcp = bytearray(packet[:20]), bytearray(packet[20:])
    if tcp_options is not None:
        old_len = (tcp[12] >> 4) * 4
        tcp_options += bytes(-len(tcp_options) % 4)
        tcp[20:old_len] = tcp_options
        tcp[12] = (20 + len(tcp_options)) // 4 << 4 | tcp[12] & 0x0F
    if data_offset is not None:
        tcp[12] = data_offset << 4 | tcp[12] & 0x0F
    ip_options = b""
    if ihl is not None:
        ip[0] = 0x40 | ihl
        ip_options = filler[: max(ihl - 5, 0) * 4]
    if frag is not None:
        ip[6:8] = frag.to_bytes(2, "big")
    if proto is not None:
        ip[9] = proto
    total = 20 + len(ip_options) + len(tcp) + (total_delta or 0)
    ip[2:4] = max(0, min(0xFFFF, total)).to_bytes(2, "big")
    data = bytes(ip) + ip_options + bytes(tcp)
    if (data[0] & 0x0F) * 4 <= len(data):
        data = refix(data)
    decoded = decode_or_none(data)
    if decoded is not None:
        assert decode(encode(decoded)) == decoded
        assert describe(decoded)


# pcap and tshark ---------------------------------------------------------------------------


def test_pcap_round_trip(tmp_path: Path) -> None:
    records = [(0.0, encode(syn())), (1.5, b""), (1_700_000_000.123456, bytes(range(256)))]
    path = tmp_path / "x.pcap"
    write_pcap(path, records)
    back = read_pcap(path)
    assert [data for _, data in back] == [data for _, data in records]
    assert [t for t, _ in back] == pytest.approx([t for t, _ in records], abs=1e-6)
    raw = path.read_bytes()
    assert raw[:4] == bytes.fromhex("d4c3b2a1")  # little-endian magic a1b2c3d4
    assert raw[20:24] == (101).to_bytes(4, "little")  # LINKTYPE_RAW


def test_read_pcap_rejects_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="too short"):
        read_pcap(path)
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))
    with pytest.raises(ValueError, match="not a classic pcap"):
        read_pcap(path)
    write_pcap(path, [(1.0, encode(syn()))])
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="record 0 claims 44 bytes, only 41 remain"):
        read_pcap(path)
    path.write_bytes(raw + b"\x00" * 5)
    with pytest.raises(ValueError, match="record 1 header truncated"):
        read_pcap(path)
    path.write_bytes(raw[:20] + (1).to_bytes(4, "little") + raw[24:])
    with pytest.raises(ValueError, match="link type 1"):
        read_pcap(path)
    with pytest.raises(ValueError, match="timestamp"):
        write_pcap(path, [(-1.0, b"")])


TSHARK_FIELDS = (
    "ip.src",
    "ip.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.flags",
    "tcp.len",
    "tcp.window_size_value",
    "tcp.payload",
    "tcp.options.mss_val",
    "tcp.checksum.status",
    "ip.checksum.status",
)
CHECKSUM_GOOD, CHECKSUM_BAD = "1", "0"  # tshark's checksum status; 2 means "not verified"


def test_tshark_reads_what_we_encode(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    client, server = ("198.18.0.2", 40000), ("198.18.0.1", 5000)

    def packet(frm: tuple[str, int], to: tuple[str, int], seg: Segment, **kw: object) -> Packet:
        return Packet(frm[0], to[0], frm[1], to[1], seg, **kw)  # type: ignore[arg-type]

    packets = [
        # An ECN-setup SYN: ECE and CWR set.
        packet(
            client,
            server,
            Segment(Flags.SYN, 1000, 0, 64240),
            options=(mss_option(1460),),
            extra_flags=0xC0,
        ),
        packet(
            server,
            client,
            Segment(Flags.SYN | Flags.ACK, 5000, 1001, 65160),
            options=(mss_option(1400), TcpOption(1), TcpOption(3, b"\x07")),
        ),
        packet(
            client, server, Segment(Flags.ACK | Flags.PSH, 1001, 5001, 502, b"hello, tcp"), ip_id=7
        ),
        packet(client, server, Segment(Flags.FIN | Flags.ACK, 1011, 5001, 502)),
        packet(server, client, Segment(Flags.RST | Flags.ACK, 5001, 1012, 0), ttl=1),
    ]
    frames = [encode(p) for p in packets]
    corrupt = bytearray(frames[2])
    corrupt[-1] ^= 0x01  # payload byte: only the TCP checksum is wrong
    path = tmp_path / "wire.pcap"
    write_pcap(path, [(1.0 + i / 10, f) for i, f in enumerate([*frames, bytes(corrupt)])])

    command = [tshark, "-n", "-r", str(path)]
    command += ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-T", "fields"]
    for name in TSHARK_FIELDS:
        command += ["-e", name]
    # stderr ignored: tshark warns when run as root.
    result = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=60
    )
    assert result.returncode == 0
    rows = [
        dict(zip(TSHARK_FIELDS, line.split("\t"), strict=True))
        for line in result.stdout.splitlines()
    ]
    assert len(rows) == len(packets) + 1

    for pkt, row in zip(packets, rows, strict=False):
        seg = pkt.segment
        mss = option_mss(pkt.options)
        assert row == {
            "ip.src": pkt.src,
            "ip.dst": pkt.dst,
            "tcp.srcport": str(pkt.sport),
            "tcp.dstport": str(pkt.dport),
            "tcp.seq_raw": str(seg.seq),
            "tcp.ack_raw": str(seg.ack),
            "tcp.flags": f"0x{seg.bits | pkt.extra_flags:04x}",
            "tcp.len": str(len(seg.payload)),
            "tcp.window_size_value": str(seg.wnd),
            "tcp.payload": seg.payload.hex(),
            "tcp.options.mss_val": "" if mss is None else str(mss),
            "tcp.checksum.status": CHECKSUM_GOOD,
            "ip.checksum.status": CHECKSUM_GOOD,
        }, describe(pkt)
    # The control: tshark does verify, and sees the one corrupted checksum.
    assert rows[-1]["tcp.checksum.status"] == CHECKSUM_BAD
    assert rows[-1]["ip.checksum.status"] == CHECKSUM_GOOD
    with pytest.raises(MalformedPacket, match="TCP checksum"):
        decode(bytes(corrupt))
