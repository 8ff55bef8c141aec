"""What the packet targets share: the kernel (linux.py) and the agents (agent.py).

Both put raw IPv4 segments on a wire and read the stack's replies from it.
`PacketTarget` does that part once: `inject` encodes a segment and sends
it, `collect` waits boundedly for the stack's packets and decodes them
into an `Observation`.  A target supplies the raw wire (`_send_packet`,
`_receive_packet`) and its application side (`start`, `call`, `_accept`,
`_read`, `close`).

Every wait is bounded: a segment the oracle expects is waited for at most
`PACKET_TIMEOUT`, a timer at most `TIMER_TIMEOUT`, and a collect ends once
the stack has been quiet for its settle time after its last packet.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

from synack.harness.fuzz.targets.base import AppCall, Observation, Role, TargetError, Traits
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

LOCAL, PEER = "198.18.0.1", "198.18.0.2"  # the stack's address and the fuzzer's
PACKET_TIMEOUT = 0.05  # seconds to wait for a segment the oracle expects (the kernel's: ~10 us)
TIMER_TIMEOUT = 3.5  # a wait() on a real-time stack: the first SYN retransmission comes after 1 s
PEER_MSS = 536  # the MSS option of the peer's SYNs
KERNEL_SETTLE = 0.0005  # quiet time after the kernel's last packet (it answers within the write)
AGENT_SETTLE = 0.002  # the same for an agent: another process, scheduled after the send
KERNEL_TIMER_SETTLE = 0.05  # quiet time after a segment of the kernel's during a wait()
KERNEL_MAX_PACKETS = 1024  # packets of one step: more is a flood (a loop in the kernel's path)
AGENT_MAX_PACKETS = 256  # packets an agent may send in one step (or before a reset)

RECV_LIMIT = 64
"""read() calls one RECEIVE makes at most on a real stack."""


class ReadFailed(Exception):
    """A read() on a real stack failed; the message is the errno name."""


def receive_everything(
    read: Callable[[], bytes | None], notes: list[str], delivered: list[Deliver]
) -> bool:
    """RECEIVE on a real stack: `read()` until nothing is left, as the model hands
    over its whole buffer.  `read` returns text, b"" at the end of the stream, or
    None when nothing is queued.  Notes what happened and delivers the text;
    returns whether the read stays pending (nothing was queued yet)."""
    data = b""
    for _ in range(RECV_LIMIT):
        try:
            chunk = read()
        except ReadFailed as exc:
            notes.append(f"recv(): errno {exc}")
            return False
        if chunk is None:
            break
        if not chunk:
            end = f"{len(data)} octets, then end of stream" if data else "0 (end of stream)"
            notes.append(f"recv(): {end}")
            if data:
                delivered.append(Deliver(data))
            return False
        data += chunk
    if not data:
        # The model's RECEIVE stays pending until text (or the FIN) arrives; a
        # blocked read() does the same, so the target keeps reading.
        notes.append("recv(): nothing queued yet, the read stays pending")
        return True
    notes.append(f"recv(): {len(data)} octets")
    delivered.append(Deliver(data))
    return False


@dataclass(slots=True)
class Step:
    """What one collect has read so far."""

    segments: list[Segment] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    received: int = 0  # packets, the stack's flood guard counts them


class PacketTarget(ABC):
    """A stack on the other end of a wire of IPv4 packets: 198.18.0.1 (LOCAL),
    with the fuzzer as the peer 198.18.0.2 (PEER) on a fresh port pair per example."""

    name: str
    traits: Traits
    settle: float  # quiet time after the last packet before a collect ends
    timer_settle: float  # the same after a segment that came during a real-time wait()
    max_packets: int  # packets of one step: more is a flood
    anomaly_settles: bool  # whether a packet that is no segment of ours restarts the settle

    def __init__(self) -> None:
        self._ports = count()
        self.port = self.peer_port = 0
        self.log: list[tuple[float, bytes]] = []  # packets both ways, with their times
        self.notes: list[str] = []
        self.delivered: list[Deliver] = []
        self.waiting = False
        self.recv_pending = False

    # ------------------------------------------------------------ hooks

    @abstractmethod
    def _send_packet(self, raw: bytes) -> None:
        """Put one IPv4 packet from the peer on the wire (a TargetError if it cannot)."""

    @abstractmethod
    def _receive_packet(self, timeout: float) -> bytes | None:
        """One IPv4 packet from the stack within `timeout` seconds, or None."""

    @abstractmethod
    def _flood_error(self, what: str) -> TargetError:
        """The error that ends a target whose stack misbehaved on the wire (a flood)."""

    @abstractmethod
    def _malformed(self, raw: bytes, exc: MalformedPacket) -> str:
        """The anomaly a malformed packet makes, or raise if it breaks the target."""

    @abstractmethod
    def _accept(self) -> None:
        """Take the connection a passive open has, once there is one."""

    @abstractmethod
    def _read(self) -> bytes | None:
        """One read() on the connection, as `receive_everything` wants it."""

    @abstractmethod
    def _after_packets(self, step: Step, expect: int, real_wait: bool) -> None:
        """What the target does once the stack has been quiet, before the application's
        turn (an agent is asked whether it is alive: a hung one sends nothing either)."""

    @abstractmethod
    def start(self, role: Role, iss: int) -> None: ...

    @abstractmethod
    def call(self, call: AppCall) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    # ---------------------------------------------------------- actions

    def _begin(self) -> None:
        """A fresh port pair and nothing observed yet: the start of every example."""
        n = next(self._ports)
        self.port = 20000 + n % 40000
        self.peer_port = 1024 + (n * 7919) % 60000
        self.log, self.notes, self.delivered = [], [], []
        self.waiting = self.recv_pending = False

    def inject(self, segment: Segment) -> None:
        options = (mss_option(PEER_MSS),) if segment.syn else ()
        raw = encode(Packet(PEER, LOCAL, self.peer_port, self.port, segment, options))
        self.log.append((time.time(), raw))
        self._send_packet(raw)

    def _recv(self) -> None:
        """RECEIVE: everything queued."""
        self.recv_pending = receive_everything(self._read, self.notes, self.delivered)

    def wait(self) -> None:
        self.waiting = True

    # ---------------------------------------------------------- collect

    def parse(self, raw: bytes) -> Segment | str:
        """The segment of this connection in `raw`, or why it is an anomaly instead."""
        try:
            pkt = decode(raw)
        except MalformedPacket as exc:
            return self._malformed(raw, exc)
        if (pkt.src, pkt.sport, pkt.dst, pkt.dport) != (LOCAL, self.port, PEER, self.peer_port):
            return f"packet of another connection ignored: {describe(pkt)}"
        return pkt.segment

    def _take(self, timeout: float, step: Step) -> bool:
        """Read one packet within `timeout` into `step`; False if none came."""
        raw = self._receive_packet(timeout)
        if raw is None:
            return False
        self.log.append((time.time(), raw))
        step.received += 1
        if step.received > self.max_packets:
            raise self._flood_error(f"more than {self.max_packets} packets in one step (a flood)")
        segment = self.parse(raw)
        if isinstance(segment, str):
            step.anomalies.append(segment)
        else:
            step.segments.append(segment)
        return True

    def collect(self, expect: int) -> Observation:
        """The stack's segments since the last collect, with bounded waits."""
        step = Step()
        real_wait = self.waiting and self.traits.spontaneous_timers
        first = TIMER_TIMEOUT if real_wait else (PACKET_TIMEOUT if expect else self.settle)
        deadline = time.monotonic() + first
        seen = 0
        while self._take(max(deadline - time.monotonic(), 0.0), step):
            if len(step.segments) == seen and not self.anomaly_settles:
                continue
            seen = len(step.segments)
            settle = self.timer_settle if real_wait else self.settle
            if seen < expect and not real_wait:
                settle = PACKET_TIMEOUT
            deadline = time.monotonic() + settle
        self._after_packets(step, expect, real_wait)
        self.waiting = False
        self._accept()
        if self.recv_pending:
            self._recv()
        delivered, self.delivered = tuple(self.delivered), []
        packets, self.log = tuple(self.log), []
        results, self.notes = tuple(self.notes), []
        return Observation(tuple(step.segments), delivered, packets, tuple(step.anomalies), results)
