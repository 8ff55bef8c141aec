"""`--target agent:"CMD ARGS"`: a TCP stack in another process, behind the agent contract.

Version 1 of the contract (docs/agent-protocol.md): synack starts CMD
with one end of a `socketpair(AF_UNIX, SOCK_DGRAM)` inherited as the fd
named by SYNACK_PACKET_FD (one datagram = one IPv4 packet, both ways;
the stack is SYNACK_LOCAL = 198.18.0.1, synack SYNACK_PEER = 198.18.0.2),
and drives the stack's application side with one command line on the
agent's stdin and one reply line on its stdout.  The agent's first line
is its hello: `synack-agent 1 name=NAME [trait=0|1 ...]`.  Lines that
start with `event ` may come before a reply; they are kept as notes.

Every read from the agent is bounded in time; an agent that exits, hangs
or says something outside the contract is a `TargetError` (one line,
with the last line it wrote on stderr).  The agent runs in its own
process group and is killed with it when the target closes.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import replace
from itertools import count
from pathlib import Path

from synack.model.segment import Segment
from synack.model.types import Deliver

from .targets import (
    AppCall,
    CallName,
    Observation,
    ReadFailed,
    Role,
    TargetError,
    Traits,
    receive_everything,
)
from .wire import MalformedPacket, Packet, decode, describe, encode, mss_option

PROTOCOL = 1
LOCAL, PEER = "198.18.0.1", "198.18.0.2"
HELLO_TIMEOUT = 20.0  # a shim may compile or load a runtime first
REPLY_TIMEOUT = 5.0  # one command's reply
PACKET_TIMEOUT = 0.05  # a segment the oracle expects
SETTLE = 0.002
TIMER_TIMEOUT = 3.5  # a real-time stack's next timer
PEER_MSS = 536

AGENT_TRAITS = Traits(
    exact_windows=False,
    user_outputs=False,
    spontaneous_timers=True,
    calls_in_any_state=False,
    holds_out_of_order=True,
    slow_waits=True,
)
"""What synack assumes of an agent's stack unless its hello says otherwise."""


def parse_hello(line: str) -> tuple[str, Traits]:
    """The agent's name and traits from its hello line; ValueError if it is not one."""
    words = line.split()
    if len(words) < 2 or words[0] != "synack-agent":
        raise ValueError(f"not an agent hello: {line.strip()[:80]!r}")
    if words[1] != str(PROTOCOL):
        raise ValueError(f"agent speaks protocol {words[1]}, synack speaks {PROTOCOL}")
    name, changes = "agent", {}
    known = set(Traits.__dataclass_fields__)
    for word in words[2:]:
        key, _, value = word.partition("=")
        if key == "name" and value:
            name = value
        elif key in known and value in ("0", "1"):
            changes[key] = value == "1"
        else:
            raise ValueError(f"unknown hello field {word!r}")
    return name, replace(AGENT_TRAITS, **changes)  # type: ignore[arg-type]


class AgentTarget:
    """A stack in a child process: packets on a datagram socket, calls as lines."""

    def __init__(self, command: str) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise TargetError(f"agent command {command!r}: {exc}") from None
        if not argv:
            raise TargetError('agent: empty command (agent:"CMD ARGS")')
        self.command = command
        self.packets, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        env = {
            **os.environ,
            "SYNACK_PACKET_FD": str(theirs.fileno()),
            "SYNACK_LOCAL": LOCAL,
            "SYNACK_PEER": PEER,
            "SYNACK_PROTOCOL": str(PROTOCOL),
        }
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                pass_fds=(theirs.fileno(),),
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            theirs.close()
            raise TargetError(f"agent {argv[0]!r} cannot be started: {exc.strerror}") from None
        theirs.close()
        self.buffer = b""
        try:
            self.name, self.traits = parse_hello(self._line(HELLO_TIMEOUT))
        except (ValueError, TargetError) as exc:
            self.close()
            raise TargetError(f"agent {argv[0]!r}: {exc}") from None
        self.name = f"agent:{self.name}"
        self._ports = count()
        self.port = self.peer_port = 0
        self.passive = False
        self.accepted = False
        self.recv_pending = False
        self.waiting = False
        self.log: list[tuple[float, bytes]] = []
        self.notes: list[str] = []
        self.delivered: list[Deliver] = []

    # -------------------------------------------------------- the lines

    def _last_stderr(self) -> str:
        """The agent's last stderr line; all of it is kept in a file (a backtrace, say)."""
        with contextlib.suppress(OSError):
            self.stderr.seek(0)
            text = self.stderr.read()
            lines = text.decode(errors="replace").strip().splitlines()
            if lines:
                kept = Path(tempfile.gettempdir()) / f"synack-agent-{self.proc.pid}.stderr"
                kept.write_bytes(text)
                return f"; its stderr says: {lines[-1][:200]} (all of it: {kept})"
        return ""

    def _status(self) -> int | None:
        """The exit status of an agent whose output has ended (it may take a moment)."""
        try:
            return self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def _line(self, timeout: float) -> str:
        """One line from the agent, within `timeout` seconds."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TargetError(f"agent said nothing for {timeout:g} s{self._last_stderr()}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise TargetError(f"agent exited (status {self._status()}){self._last_stderr()}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace")

    def _ask(self, command: str) -> str:
        """Send one command; its reply (events before it are kept as notes)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            raise TargetError(
                f"agent exited (status {self._status()}){self._last_stderr()}"
            ) from None
        while True:
            line = self._line(REPLY_TIMEOUT)
            if line.startswith("event "):
                self.notes.append(line)
                continue
            if line.startswith("error"):
                raise TargetError(f"agent refused {command.split()[0]!r}: {line}")
            return line

    # ---------------------------------------------------------- target

    def start(self, role: Role, iss: int) -> None:
        self._ask("reset")
        self._drain()
        n = next(self._ports)
        self.port = 20000 + n % 40000
        self.peer_port = 1024 + (n * 7919) % 60000
        self.passive, self.accepted = role is Role.PASSIVE, False
        self.recv_pending = self.waiting = False
        self.log, self.notes, self.delivered = [], [], []
        if self.passive:
            reply = self._ask(f"listen {self.port}")
        else:
            reply = self._ask(f"connect {self.port} {self.peer_port}")
        if reply != "ok":
            self.notes.append(f"{'listen' if self.passive else 'connect'}: {reply}")

    def inject(self, segment: Segment) -> None:
        options = (mss_option(PEER_MSS),) if segment.syn else ()
        raw = encode(Packet(PEER, LOCAL, self.peer_port, self.port, segment, options))
        self.log.append((time.time(), raw))
        try:
            self.packets.send(raw)
        except OSError as exc:
            raise TargetError(f"agent's packet socket: {exc.strerror}") from None

    def _accept(self) -> None:
        if self.passive and not self.accepted and self._ask("accept") == "accepted":
            self.accepted = True

    def call(self, call: AppCall) -> None:
        self._accept()
        if call.name is CallName.SEND:
            self.notes.append(f"{call}: {self._ask('send ' + call.data.hex())}")
        elif call.name is CallName.RECV:
            self._recv()
        elif call.name is CallName.SHUTDOWN:
            self.notes.append(f"{call}: {self._ask('shutdown')}")
        else:
            self.notes.append(f"{call}: {self._ask('abort')}")
            self.recv_pending = False

    def _recv(self) -> None:
        self.recv_pending = receive_everything(self._read, self.notes, self.delivered)

    def _read(self) -> bytes | None:
        reply = self._ask("recv")
        if reply.startswith("data "):
            return bytes.fromhex(reply[5:].strip())
        if reply == "eof":
            return b""
        if reply == "errno EAGAIN":
            return None
        raise ReadFailed(reply.removeprefix("errno "))

    def wait(self) -> None:
        self.waiting = True
        if not self.traits.spontaneous_timers:
            self._ask("wait")  # virtual time: the agent fires its next timer

    def _drain(self) -> None:
        while select.select([self.packets], [], [], 0)[0]:
            self.packets.recv(65536)

    def collect(self, expect: int) -> Observation:
        segments: list[Segment] = []
        anomalies: list[str] = []
        real_wait = self.waiting and self.traits.spontaneous_timers
        first = TIMER_TIMEOUT if real_wait else (PACKET_TIMEOUT if expect else SETTLE)
        deadline = time.monotonic() + first
        while True:
            left = max(deadline - time.monotonic(), 0.0)
            if not select.select([self.packets], [], [], left)[0]:
                break
            raw = self.packets.recv(65536)
            self.log.append((time.time(), raw))
            try:
                pkt = decode(raw)
            except MalformedPacket as exc:
                anomalies.append(f"malformed packet from the agent: {exc}")
                continue
            if (pkt.src, pkt.sport, pkt.dst, pkt.dport) != (LOCAL, self.port, PEER, self.peer_port):
                anomalies.append(f"packet of another connection ignored: {describe(pkt)}")
                continue
            segments.append(pkt.segment)
            wanted = len(segments) < expect and not real_wait
            deadline = time.monotonic() + (PACKET_TIMEOUT if wanted else SETTLE)
        self.waiting = False
        self._accept()
        if self.recv_pending:
            self._recv()
        delivered, self.delivered = tuple(self.delivered), []
        packets, self.log = tuple(self.log), []
        notes, self.notes = tuple(self.notes), []
        return Observation(tuple(segments), delivered, packets, tuple(anomalies), notes)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever it started
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.packets.close()
        self.stderr.close()
