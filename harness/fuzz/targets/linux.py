"""The Linux kernel's TCP as a fuzz target, through a TUN device in a private namespace.

The kernel owns 198.18.0.1 on the TUN device; the fuzzer plays the peer
198.18.0.2.  Segments are written to the device as IPv4 packets and the
kernel's replies are read from it.  The application side is real sockets
created inside the namespace: listen()/accept() or a non-blocking
connect(), send(), recv(), shutdown(SHUT_WR), and close() with
SO_LINGER {on, 0} for ABORT.  Each example gets a fresh port pair, so the
previous example's connection (in TIME-WAIT, say) cannot interfere.

Every wait on the kernel is bounded (packet.py): a reply the oracle expects
is waited for at most `PACKET_TIMEOUT`, a timer at most `TIMER_TIMEOUT`.
The kernel answers an injected segment within the write() (softirq on the
way out of the system call; about 10 us measured), so a short settle time
after the last packet catches late extras.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct

from synack.harness.fuzz.targets.base import (
    AppCall,
    CallName,
    Role,
    TargetError,
    Traits,
)
from synack.harness.fuzz.targets.netns import SetupError, TunNamespace, preflight
from synack.harness.fuzz.targets.packet import (
    KERNEL_MAX_PACKETS,
    KERNEL_SETTLE,
    KERNEL_TIMER_SETTLE,
    LOCAL,
    PEER,
    PacketTarget,
    ReadFailed,
    Step,
)
from synack.harness.fuzz.targets.wire import MalformedPacket
from synack.model.segment import Segment

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


class LinuxTarget(PacketTarget):
    """The kernel in a namespace of its own, opened on creation, closed by `close()`."""

    name = "linux"
    traits = LINUX_TRAITS
    settle = KERNEL_SETTLE
    timer_settle = KERNEL_TIMER_SETTLE  # a timer's output is not within our write(): wait more
    max_packets = KERNEL_MAX_PACKETS
    anomaly_settles = False  # old connections write to the TUN device too: only ours say more

    def __init__(self) -> None:
        reason = preflight()
        if reason is not None:
            raise TargetError(f"the linux target needs a private network namespace: {reason}")
        try:
            self.ns = TunNamespace(local=LOCAL, peer=PEER).open()
        except SetupError as exc:
            raise TargetError(str(exc)) from None
        super().__init__()
        self.listener: socket.socket | None = None
        self.conn: socket.socket | None = None

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
        self._begin()
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

    # ------------------------------------------------------------ the wire

    def _send_packet(self, raw: bytes) -> None:
        try:
            self.ns.write(raw)
        except SetupError as exc:
            raise TargetError(f"linux: {exc}") from None

    def _receive_packet(self, timeout: float) -> bytes | None:
        try:
            return self.ns.read(timeout)
        except (SetupError, OSError) as exc:
            raise TargetError(f"linux: reading the TUN device: {exc}") from None

    def _flood_error(self, what: str) -> TargetError:
        return TargetError(f"linux: {what}")

    def _malformed(self, raw: bytes, exc: MalformedPacket) -> str:
        return f"malformed packet from the kernel: {exc}"

    def _after_packets(self, step: Step, expect: int, real_wait: bool) -> None:
        pass  # the kernel cannot hang as an agent can: its silence is the stack's

    # ------------------------------------------------------------ actions

    def inject(self, segment: Segment) -> None:
        super().inject(segment)
        self._accept()  # the listener goes as soon as the kernel has the connection

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
                self._recv()
            elif call.name is CallName.SHUTDOWN:
                conn.shutdown(socket.SHUT_WR)
            else:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                self.conn = None
                self.recv_pending = False
        except OSError as exc:
            self.notes.append(f"{call}: errno {errno.errorcode.get(exc.errno or 0, exc.errno)}")

    def _read(self) -> bytes | None:
        """One recv().  It stops short of an urgent byte (tcp_recvmsg() ends a read
        at the urgent mark, SO_OOBINLINE or not), so RECEIVE reads until none is left."""
        conn = self.conn
        assert conn is not None  # a read is pending only on a connected socket (ABORT ends both)
        try:
            return conn.recv(65536)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise ReadFailed(errno.errorcode.get(exc.errno or 0, str(exc.errno))) from None
