"""The private network namespace with its TUN device (harness/fuzz/targets/netns.py).

Packets are built here by hand (struct, checksums) so that these tests do
not depend on the harness's own wire format code.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synack.harness.fuzz.targets.netns import DEFAULT_SYSCTLS, SetupError, TunNamespace

from .util import require_netns

LOCAL, PEER = "198.18.0.1", "198.18.0.2"
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10.0

SYN, ACK = 0x02, 0x10
TCPOPT_EOL, TCPOPT_NOP, TCPOPT_MSS, TCPOPT_WSCALE = 0, 1, 2, 3
TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP = 4, 8


# --- packets ------------------------------------------------------------------


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_packet(
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    options: bytes = b"",
    src: str = PEER,
    dst: str = LOCAL,
) -> bytes:
    """An IPv4 packet holding one TCP segment, checksums right."""
    assert len(options) % 4 == 0
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, 8192, 0, 0)
    tcp = header + options
    addresses = socket.inet_aton(src) + socket.inet_aton(dst)
    pseudo = addresses + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, socket.IPPROTO_TCP, 0)
    ip += addresses
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def syn_options() -> bytes:
    """What a Linux client offers: MSS, SACK permitted, timestamps, window scale.

    The kernel only puts an option in its SYN,ACK if the SYN offered it, so
    all are offered here to see which the namespace's sysctls turn off.
    """
    return (
        struct.pack("!BBH", TCPOPT_MSS, 4, 1460)
        + struct.pack("!BB", TCPOPT_SACK_PERM, 2)
        + struct.pack("!BBII", TCPOPT_TIMESTAMP, 10, 12345, 0)
        + struct.pack("!BBBB", TCPOPT_NOP, TCPOPT_WSCALE, 3, 7)
    )


def parse(packet: bytes) -> dict[str, object]:
    """The fields of an IPv4/TCP packet the tests look at."""
    assert packet[0] >> 4 == 4, f"not IPv4: {packet.hex()}"
    ihl = (packet[0] & 0x0F) * 4
    assert packet[9] == socket.IPPROTO_TCP, f"not TCP: {packet.hex()}"
    assert checksum(packet[:ihl]) == 0, "bad IP header checksum"
    tcp = packet[ihl:]
    sport, dport, seq, ack, offset_byte, flags = struct.unpack("!HHIIBB", tcp[:14])
    options = tcp[20 : (offset_byte >> 4) * 4]
    kinds: list[int] = []
    i = 0
    while i < len(options) and options[i] != TCPOPT_EOL:
        if options[i] == TCPOPT_NOP:
            i += 1
            continue
        kinds.append(options[i])
        i += options[i + 1]
    return {
        "src": socket.inet_ntoa(packet[12:16]),
        "dst": socket.inet_ntoa(packet[16:20]),
        "sport": sport,
        "dport": dport,
        "seq": seq,
        "ack": ack,
        "flags": flags,
        "option_kinds": kinds,
    }


# --- helpers ------------------------------------------------------------------


def own_ns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


def ns_links(inode: int) -> list[str]:
    """Links in /proc to network namespace `inode`: threads in it, fds of it.

    (lsns from util-linux 2.38 does not list namespaces held only by a fd,
    which is how TunNamespace holds its namespace, so /proc is read here.)
    """
    target = f"net:[{inode}]"
    found: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            tasks = os.listdir(f"/proc/{entry}/task")
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue  # the process is gone, or its fd table is not readable
        links = [f"/proc/{entry}/task/{tid}/ns/net" for tid in tasks]
        links += [f"/proc/{entry}/fd/{fd}" for fd in fds]
        for link in links:
            with contextlib.suppress(OSError):
                if os.readlink(link) == target:
                    found.append(link)
    return found


def holders(inode: int) -> set[int]:
    """The PIDs that ns_links finds."""
    return {int(link.split("/")[2]) for link in ns_links(inode)}


class FileHandle(ctypes.Structure):
    _fields_ = [
        ("handle_bytes", ctypes.c_uint),
        ("handle_type", ctypes.c_int),
        ("f_handle", ctypes.c_ubyte * 128),
    ]


LIBC = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400


def ns_handle(path: str) -> FileHandle | None:
    """A file handle of the namespace `path` links to, without holding it.

    From Linux 6.18 on, such a handle opens only while the namespace is
    alive, so it tells whether the kernel has really let go of it.  None
    where namespaces have no file handles (older kernels).
    """
    handle = FileHandle(handle_bytes=ctypes.sizeof(FileHandle) - 8)
    mount_id = ctypes.c_int()
    result = LIBC.name_to_handle_at(
        AT_FDCWD, path.encode(), ctypes.byref(handle), ctypes.byref(mount_id), AT_SYMLINK_FOLLOW
    )
    return handle if result == 0 else None


def ns_alive(handle: FileHandle) -> bool:
    anchor = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = LIBC.open_by_handle_at(anchor, ctypes.byref(handle), os.O_RDONLY | os.O_CLOEXEC)
        err = ctypes.get_errno()
    finally:
        os.close(anchor)
    if fd >= 0:
        os.close(fd)
        return True
    if err == errno.ESTALE:
        return False
    raise OSError(err, os.strerror(err))


def freed(handle: FileHandle | None) -> bool:
    """The namespace is gone (within a second), or the kernel cannot tell us."""
    deadline = time.monotonic() + 1.0
    while handle is not None and ns_alive(handle):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def command(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=True)
    return done.stdout


def host_has_link(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


@pytest.fixture
def ns() -> Iterator[TunNamespace]:
    require_netns()
    with TunNamespace() as namespace:
        yield namespace


# --- tests --------------------------------------------------------------------


def test_device_address_and_route_inside_host_untouched() -> None:
    require_netns()
    before = (os.readlink("/proc/self/ns/net"), own_ns())
    with TunNamespace() as ns:
        assert (os.readlink("/proc/self/ns/net"), own_ns()) == before
        assert not host_has_link("synack0")
        with ns.inside():
            assert own_ns() == f"net:[{ns.inode}]"
            assert host_has_link("synack0")
            # A child forked by the thread inside starts in the namespace.
            child_ns = command("readlink", "/proc/self/ns/net")
            addresses = command("ip", "-o", "-4", "addr", "show", "dev", "synack0")
            routes = command("ip", "route", "show")
        assert child_ns.strip() == f"net:[{ns.inode}]"
        assert "inet 198.18.0.1/24" in addresses
        route = "198.18.0.0/24 dev synack0 proto kernel scope link src 198.18.0.1 quickack 1"
        assert [" ".join(line.split()) for line in routes.splitlines()] == [route]
        assert (os.readlink("/proc/self/ns/net"), own_ns()) == before
    assert (os.readlink("/proc/self/ns/net"), own_ns()) == before
    assert not host_has_link("synack0")


def test_kernel_answers_a_syn_with_a_plain_syn_ack(ns: TunNamespace) -> None:
    listener = ns.socket()
    listener.bind((LOCAL, 8080))
    listener.listen(8)
    seq = 0x12345678
    ns.write(tcp_packet(40000, 8080, seq, 0, SYN, syn_options()))
    reply = ns.read(timeout=1.0)
    assert reply is not None, "no answer to the SYN within 1 s"
    fields = parse(reply)
    assert (fields["src"], fields["dst"]) == (LOCAL, PEER)
    assert (fields["sport"], fields["dport"]) == (8080, 40000)
    assert fields["flags"] == SYN | ACK
    assert fields["ack"] == seq + 1
    # The SYN offered all four; the sysctls turned off all but MSS.
    assert fields["option_kinds"] == [TCPOPT_MSS]


def test_sysctls_set_inside_only(ns: TunNamespace) -> None:
    host_path = Path("/proc/sys/net/ipv4/tcp_timestamps")
    host = host_path.read_text()
    assert ns.sysctl("net.ipv4.tcp_timestamps") == "0"
    assert host_path.read_text() == host
    for key, value in DEFAULT_SYSCTLS.items():
        if key not in ns.skipped_sysctls:
            assert ns.sysctl(key) == value, key


def test_missing_sysctls_are_skipped_and_listed() -> None:
    require_netns()
    wanted = {"net.ipv4.tcp_sack": "0", "net.ipv4.tcp_no_such_setting": "1"}
    with TunNamespace(sysctls=wanted) as ns:
        assert ns.skipped_sysctls == ("net.ipv4.tcp_no_such_setting",)
        assert ns.sysctl("net.ipv4.tcp_sack") == "0"


def test_failed_open_restores_thread_and_closes_everything() -> None:
    require_netns()
    before = own_ns()
    fds = sorted(os.listdir("/proc/self/fd"))
    ns = TunNamespace(sysctls={"net.ipv4.tcp_sack": "not-a-number"})
    with pytest.raises(SetupError, match=r"tcp_sack"):
        ns.open()
    assert own_ns() == before
    assert not ns.is_open
    assert sorted(os.listdir("/proc/self/fd")) == fds


def test_interrupted_open_restores_thread_and_closes_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A KeyboardInterrupt after the device exists, while the thread is inside."""
    require_netns()
    real_run = TunNamespace._run

    def run(self: TunNamespace, *argv: str) -> str:
        if "route" in argv:
            assert host_has_link("synack0"), "the thread should be inside by now"
            raise KeyboardInterrupt
        return real_run(self, *argv)

    monkeypatch.setattr(TunNamespace, "_run", run)
    before = own_ns()
    fds = sorted(os.listdir("/proc/self/fd"))
    ns = TunNamespace()
    with pytest.raises(KeyboardInterrupt):
        ns.open()
    assert own_ns() == before
    assert not ns.is_open
    assert sorted(os.listdir("/proc/self/fd")) == fds
    assert not host_has_link("synack0")


def test_inside_restores_on_exception(ns: TunNamespace) -> None:
    before = own_ns()
    with pytest.raises(KeyboardInterrupt), ns.inside():
        assert own_ns() != before
        raise KeyboardInterrupt
    assert own_ns() == before


def test_close_frees_the_namespace() -> None:
    require_netns()
    ns = TunNamespace().open()
    inode = ns.inode
    sock = ns.socket()
    links = ns_links(inode)
    assert holders(inode) == {os.getpid()}
    handle = ns_handle(links[0])
    assert handle is None or ns_alive(handle)
    ns.close()
    ns.close()  # idempotent
    assert sock.fileno() == -1, "close() closes the sockets made in the namespace"
    assert holders(inode) == set()
    assert freed(handle)
    assert not host_has_link("synack0")
    with pytest.raises(SetupError):
        ns.read(0)


def test_sigkill_leaves_nothing_behind() -> None:
    require_netns()
    script = textwrap.dedent(
        """
        import os, signal, sys
        from synack.harness.fuzz.targets.netns import TunNamespace
        ns = TunNamespace().open()
        print(ns.inode, flush=True)
        sys.stdin.readline()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        ready, _, _ = select.select([child.stdout], [], [], TIMEOUT)
        assert ready, "the child did not report its namespace in time"
        inode = int(child.stdout.readline())
        links = ns_links(inode)
        assert holders(inode) == {child.pid}
        handle = ns_handle(links[0])
        assert handle is None or ns_alive(handle)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(TIMEOUT) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(TIMEOUT)
    assert holders(inode) == set()
    assert freed(handle)
    assert not host_has_link("synack0")


@pytest.mark.parametrize(
    ("local", "peer", "prefix"),
    [
        ("10.0.0.1", "10.0.0.2", 24),
        ("192.168.1.1", "192.168.1.2", 24),
        ("198.20.0.1", "198.20.0.2", 24),
        ("198.18.0.1", "198.18.0.2", 14),  # the network reaches outside
        ("198.18.0.1", "198.19.0.2", 24),  # the peer is not on the link
        ("198.18.0.1", "198.18.0.1", 24),
        ("198.18.0.1", "not-an-address", 24),
    ],
)
def test_addresses_outside_the_benchmark_range_are_refused(
    local: str, peer: str, prefix: int
) -> None:
    with pytest.raises(SetupError):
        TunNamespace(local=local, peer=peer, prefix=prefix)


def test_read_on_a_silent_device_returns_none(ns: TunNamespace) -> None:
    assert ns.drain() == []
    assert ns.read(timeout=0.05) is None
