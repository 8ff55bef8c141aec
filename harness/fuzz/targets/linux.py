"""The Linux kernel's TCP as a fuzz target, through a TUN device in a private namespace.

The kernel owns 198.18.0.1 on the TUN device; the fuzzer plays the peer
198.18.0.2.  Segments are written to the device as IPv4 packets and the
kernel's replies are read from it.  The application side is real sockets
created inside the namespace: listen()/accept() or a non-blocking
connect(), send(), recv(), shutdown(SHUT_WR), and close() with
SO_LINGER {on, 0} for ABORT.  Each example gets a fresh port pair, so the
previous example's connection (in TIME-WAIT, say) cannot interfere.

Every wait on the kernel is bounded: a reply the oracle expects is
waited for at most `REPLY_TIMEOUT`, a timer at most `TIMER_TIMEOUT`.
The kernel answers an injected segment within the write() (softirq on the
way out of the system call; about 10 us measured), so a short settle time
after the last packet catches late extras.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from itertools import count

from synack.harness.fuzz.targets.base import (
    AppCall,
    CallName,
    Observation,
    Role,
    TargetError,
    Traits,
)
from synack.harness.fuzz.targets.netns import SetupError, TunNamespace, preflight
from synack.harness.fuzz.targets.packet import ReadFailed, receive_everything
from synack.harness.fuzz.targets.wire import (
    MalformedPacket,
    Packet,
    decode,
    describe,
    encode,
    mss_option,
)
from synack.model.segment import Segment
from synack.model.types import Deliver

LOCAL, PEER = "198.18.0.1", "198.18.0.2"
REPLY_TIMEOUT = 0.05  # seconds to wait for a segment the oracle expects (replies take ~10 us)
SETTLE = 0.0005  # quiet time after the last packet before a collect ends
TIMER_TIMEOUT = 3.5  # a wait(): the first SYN retransmission comes after 1 s
PEER_MSS = 536
MAX_PACKETS = 1024  # packets of one step: more is a flood (a loop in the kernel's path)

LINUX_TRAITS = Traits(
    exact_windows=False,
    user_outputs=False,
    spontaneous_timers=True,
    calls_in_any_state=False,
    holds_out_of_order=True,
    slow_waits=True,
    keeps_listener=False,  # the listener is closed once the connection is accepted
    varies=("header_prediction",),
    congestion_control=True,
)


class LinuxTarget:
    """The kernel in a namespace of its own, opened on creation, closed by `close()`."""

    name = "linux"
    traits = LINUX_TRAITS

    def __init__(self) -> None:
        reason = preflight()
        if reason is not None:
            raise TargetError(f"the linux target needs a private network namespace: {reason}")
        try:
            self.ns = TunNamespace(local=LOCAL, peer=PEER).open()
        except SetupError as exc:
            raise TargetError(str(exc)) from None
        self._ports = count()
        self.port = self.peer_port = 0
        self.listener: socket.socket | None = None
        self.conn: socket.socket | None = None
        self.packets: list[tuple[float, bytes]] = []
        self.notes: list[str] = []
        self.delivered: list[Deliver] = []
        self.waiting = False
        self.recv_pending = False

    # -------------------------------------------------------------- setup

    def _drop_sockets(self) -> None:
        for sock in (self.listener, self.conn):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        self.listener = self.conn = None

    def start(self, role: Role, iss: int) -> None:
        self._drop_sockets()
        self.ns.drain()  # what the old sockets said on their way out
        n = next(self._ports)
        self.port = 20000 + n % 40000
        self.peer_port = 1024 + (n * 7919) % 60000
        self.packets, self.notes, self.delivered, self.waiting = [], [], [], False
        self.recv_pending = False
        sock = self.ns.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        sock.setblocking(False)
        sock.bind((LOCAL, self.port))
        if role is Role.PASSIVE:
            sock.listen(8)
            self.listener = sock
            return
        self.conn = sock
        result = sock.connect_ex((PEER, self.peer_port))
        if result not in (0, errno.EINPROGRESS):
            self.notes.append(f"connect: {errno.errorcode.get(result, result)}")

    def close(self) -> None:
        self._drop_sockets()
        self.ns.close()

    # ------------------------------------------------------------ actions

    def inject(self, segment: Segment) -> None:
        options = (mss_option(PEER_MSS),) if segment.syn else ()
        raw = encode(Packet(PEER, LOCAL, self.peer_port, self.port, segment, options))
        self.packets.append((time.time(), raw))
        try:
            self.ns.write(raw)
        except SetupError as exc:
            raise TargetError(f"linux: {exc}") from None
        self._accept()

    def _accept(self) -> None:
        """accept() as soon as the kernel has a connection; the listener goes then.

        The model's passive OPEN is one TCB that becomes the connection, so
        once accepted no second connection may be made on the listener.
        """
        if self.listener is None or self.conn is not None:
            return
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        self.conn = conn
        self.listener.close()
        self.listener = None

    def call(self, call: AppCall) -> None:
        self._accept()
        conn = self.conn
        if conn is None:
            self.notes.append(f"{call}: no connected socket")
            return
        try:
            if call.name is CallName.SEND:
                self.notes.append(f"{call}: {conn.send(call.data)} octets queued")
            elif call.name is CallName.RECV:
                self._recv(conn)
            elif call.name is CallName.SHUTDOWN:
                conn.shutdown(socket.SHUT_WR)
            else:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                self.conn = None
                self.recv_pending = False
        except OSError as exc:
            self.notes.append(f"{call}: errno {errno.errorcode.get(exc.errno or 0, exc.errno)}")

    def _recv(self, conn: socket.socket) -> None:
        """RECEIVE: everything queued.  One recv() stops short of an urgent byte
        (tcp_recvmsg() ends a read at the urgent mark, SO_OOBINLINE or not)."""

        def read() -> bytes | None:
            try:
                return conn.recv(65536)
            except BlockingIOError:
                return None
            except OSError as exc:
                raise ReadFailed(errno.errorcode.get(exc.errno or 0, str(exc.errno))) from None

        self.recv_pending = receive_everything(read, self.notes, self.delivered)

    def wait(self) -> None:
        self.waiting = True

    # ------------------------------------------------------------ collect

    def parse(self, raw: bytes) -> Segment | str:
        """The segment of this connection in `raw`, or why it is an anomaly instead."""
        try:
            pkt = decode(raw)
        except MalformedPacket as exc:
            return f"malformed packet from the kernel: {exc}"
        if (pkt.src, pkt.sport, pkt.dst, pkt.dport) != (LOCAL, self.port, PEER, self.peer_port):
            return f"packet of another connection ignored: {describe(pkt)}"
        return pkt.segment

    def collect(self, expect: int) -> Observation:
        """The kernel's segments since the last collect, with bounded waits."""
        segments: list[Segment] = []
        anomalies: list[str] = []
        first_wait = TIMER_TIMEOUT if self.waiting else (REPLY_TIMEOUT if expect else SETTLE)
        deadline = time.monotonic() + first_wait
        received = 0
        while True:
            timeout = deadline - time.monotonic()
            try:
                raw = self.ns.read(max(timeout, 0.0))
            except (SetupError, OSError) as exc:
                raise TargetError(f"linux: reading the TUN device: {exc}") from None
            if raw is None:
                break
            self.packets.append((time.time(), raw))
            received += 1
            if received > MAX_PACKETS:
                raise TargetError(f"linux: more than {MAX_PACKETS} packets in one step (a flood)")
            segment = self.parse(raw)
            if isinstance(segment, str):
                anomalies.append(segment)
                continue
            segments.append(segment)
            settle = SETTLE if not self.waiting else 0.05
            if len(segments) < expect and not self.waiting:
                settle = REPLY_TIMEOUT
            deadline = time.monotonic() + settle
        self.waiting = False
        self._accept()
        if self.recv_pending and self.conn is not None:
            self._recv(self.conn)
        delivered, self.delivered = tuple(self.delivered), []
        packets, self.packets = tuple(self.packets), []
        results, self.notes = tuple(self.notes), []
        return Observation(tuple(segments), delivered, packets, tuple(anomalies), results)
