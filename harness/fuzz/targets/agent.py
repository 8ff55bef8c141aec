"""`--target agent:"CMD ARGS"`: a TCP stack in another process, behind the agent contract.

Version 1 of the contract (docs/agent-protocol.md): synack starts CMD
with one end of a `socketpair(AF_UNIX, SOCK_DGRAM)` inherited as the fd
named by SYNACK_PACKET_FD (one datagram = one IPv4 packet, both ways;
the stack is SYNACK_LOCAL = 198.18.0.1, synack SYNACK_PEER = 198.18.0.2),
and drives the stack's application side with one command line on the
agent's stdin and one reply line on its stdout.  The agent's first line
is its hello: `synack-agent 1 name=NAME [trait=0|1 ...]`.  Lines that
start with `event ` may come before a reply; they are kept as notes.

Every wait on the agent is bounded: a reply (with the events before it)
within `REPLY_TIMEOUT`, a write to its stdin or packet socket within the
same, at most `MAX_EVENTS` event lines per reply, `MAX_LINE` bytes per
line and `AGENT_MAX_PACKETS` packets per step (packet.py).  An agent that exits, hangs,
floods, or says anything outside the contract (a reply that is not one of
the command's replies, a malformed packet) is a `TargetError`: one line
naming the offending line or packet, with the last line it wrote on
stderr.  A stack that sent less than the oracle expected is asked `ping`
first (any reply line will do, `error` too): a hung agent must not pass
for a stack that sends nothing.  The agent runs in its own process group, is killed with it when
the target closes, and dies with synack even after a SIGKILL
(harness/common/children.py).  `SYNACK_AGENT_HELLO_TIMEOUT` and
`SYNACK_AGENT_REPLY_TIMEOUT` override the 20 s the hello may take and the
5 s of a reply (the tests' hanging agents use them).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from synack.harness.common.children import die_with_parent
from synack.harness.fuzz.targets.base import AppCall, CallName, Role, TargetError, Traits
from synack.harness.fuzz.targets.packet import (
    AGENT_MAX_PACKETS,
    AGENT_SETTLE,
    LOCAL,
    PEER,
    PacketTarget,
    ReadFailed,
    Step,
)
from synack.harness.fuzz.targets.wire import MalformedPacket

PROTOCOL = 1
HELLO_TIMEOUT = 20.0  # a shim may compile or load a runtime first
REPLY_TIMEOUT = 5.0  # one command's reply
MAX_LINE = 1 << 18  # bytes in one line: a 64 KiB read as hex, with room to spare
MAX_EVENTS = 64  # event lines before one reply
SHOWN = 60  # characters of an offending line quoted in an error

_ERRNO = r"errno E[A-Z0-9]+"
REPLIES: dict[str, tuple[str, str]] = {
    # command: (a regular expression of its replies, the same in words)
    "reset": (r"ok", "ok"),
    "listen": (rf"ok|{_ERRNO}", "ok or errno NAME"),
    "connect": (rf"ok|{_ERRNO}", "ok or errno NAME"),
    "accept": (rf"accepted|{_ERRNO}", "accepted or errno NAME"),
    "send": (rf"ok [0-9]{{1,9}}|{_ERRNO}", "ok N or errno NAME"),
    "recv": (rf"data (?:[0-9a-fA-F]{{2}})+|eof|{_ERRNO}", "data HEX, eof or errno NAME"),
    "shutdown": (rf"ok|{_ERRNO}", "ok or errno NAME"),
    "close": (rf"ok|{_ERRNO}", "ok"),
    "abort": (rf"ok|{_ERRNO}", "ok"),
    "wait": (r"ok", "ok"),
    "ping": (r"ok|error.*", "ok, or error for a command it does not know"),
}
"""What each command may be answered with (docs/agent-protocol.md)."""


def shown(line: str | bytes) -> str:
    """An offending line or packet, quoted and cut short for a one-line error."""
    text = line if isinstance(line, str) else line.decode(errors="replace")
    cut = text[:SHOWN] + ("..." if len(text) > SHOWN else "")
    return repr(cut)


def _seconds(variable: str, default: float) -> float:
    try:
        value = float(os.environ.get(variable, default))
    except ValueError:
        return default
    return value if value > 0 else default


def hello_timeout() -> float:
    return _seconds("SYNACK_AGENT_HELLO_TIMEOUT", HELLO_TIMEOUT)


def reply_timeout() -> float:
    return _seconds("SYNACK_AGENT_REPLY_TIMEOUT", REPLY_TIMEOUT)


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


class AgentTarget(PacketTarget):
    """A stack in a child process: packets on a datagram socket, calls as lines."""

    settle = timer_settle = AGENT_SETTLE
    max_packets = AGENT_MAX_PACKETS
    anomaly_settles = True  # every packet on the socket is the agent's: it is still sending

    def __init__(self, command: str) -> None:
        super().__init__()
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
                preexec_fn=die_with_parent(),
            )
        except OSError as exc:
            theirs.close()
            raise TargetError(f"agent {argv[0]!r} cannot be started: {exc.strerror}") from None
        theirs.close()
        self.broken = False  # it hung or broke the contract: close() kills it at once
        self.reply_timeout = reply_timeout()
        self.packets.settimeout(self.reply_timeout)  # an agent that reads no packets
        assert self.proc.stdin is not None
        os.set_blocking(self.proc.stdin.fileno(), False)  # nor its commands: see _send
        self.buffer = b""
        try:
            wait = hello_timeout()
            self.name, self.traits = parse_hello(self._line(time.monotonic() + wait, wait))
        except (ValueError, TargetError) as exc:
            self.close()
            raise TargetError(f"agent {argv[0]!r}: {exc}") from None
        self.name = f"agent:{self.name}"
        self.passive = False
        self.accepted = False

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

    def _broken(self, what: str) -> TargetError:
        self.broken = True
        return TargetError(f"agent broke the contract: {what}{self._last_stderr()}")

    def _line(self, deadline: float, timeout: float) -> str:
        """One line from the agent, by `deadline` (`timeout` seconds after the ask)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise self._broken(f"a line longer than {MAX_LINE} bytes: {shown(self.buffer)}")
            left = deadline - time.monotonic()
            if left <= 0:
                self.broken = True
                flooding = self._flooding()
                flood = f" (while it sent over {self.max_packets} packets)" if flooding else ""
                raise TargetError(
                    f"agent said nothing for {timeout:g} s{flood}{self._last_stderr()}"
                )
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise TargetError(f"agent exited (status {self._status()}){self._last_stderr()}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        if len(line) > MAX_LINE:
            raise self._broken(f"a line longer than {MAX_LINE} bytes: {shown(line)}")
        return line.decode(errors="replace").removesuffix("\r")

    def _flooding(self) -> bool:
        """Whether more than max_packets packets wait (read: the target is done for)."""
        for _ in range(self.max_packets + 1):
            if not select.select([self.packets], [], [], 0)[0]:
                return False
            self.packets.recv(65536)
        return True

    def _send(self, command: str) -> None:
        """Write one command line, within REPLY_TIMEOUT (an agent may stop reading)."""
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        data = command.encode() + b"\n"
        deadline = time.monotonic() + self.reply_timeout
        while data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                self.broken = True
                raise TargetError(
                    f"agent read no command for {self.reply_timeout:g} s{self._last_stderr()}"
                )
            try:
                data = data[os.write(fd, data) :]
            except BlockingIOError:
                continue
            except OSError:
                raise TargetError(
                    f"agent exited (status {self._status()}){self._last_stderr()}"
                ) from None

    def _ask(self, command: str) -> str:
        """Send one command; its reply, checked against the contract (events before it
        are kept as notes)."""
        verb = command.split()[0]
        self._send(command)
        deadline = time.monotonic() + self.reply_timeout
        for _ in range(MAX_EVENTS + 1):
            line = self._line(deadline, self.reply_timeout)
            if line.startswith("event "):
                self.notes.append(line[:200])
                continue
            if line.startswith("error") and verb != "ping":
                raise TargetError(f"agent refused {verb!r}: {shown(line)}{self._last_stderr()}")
            pattern, words = REPLIES[verb]
            if not re.fullmatch(pattern, line):
                raise self._broken(f"reply {shown(line)} to {verb!r} (the contract: {words})")
            return line
        raise self._broken(f"more than {MAX_EVENTS} event lines before one reply to {verb!r}")

    # ---------------------------------------------------------- target

    def start(self, role: Role, iss: int) -> None:
        self._ask("reset")
        self._drain()
        self._begin()
        self.passive, self.accepted = role is Role.PASSIVE, False
        if self.passive:
            reply = self._ask(f"listen {self.port}")
        else:
            reply = self._ask(f"connect {self.port} {self.peer_port}")
        if reply != "ok":
            self.notes.append(f"{'listen' if self.passive else 'connect'}: {reply}")

    # ---------------------------------------------------------- the wire

    def _send_packet(self, raw: bytes) -> None:
        try:
            self.packets.send(raw)
        except TimeoutError:
            self.broken = True
            raise TargetError(
                f"agent read no packet for {self.reply_timeout:g} s{self._last_stderr()}"
            ) from None
        except OSError as exc:
            raise TargetError(f"agent's packet socket: {exc.strerror}") from None

    def _receive_packet(self, timeout: float) -> bytes | None:
        if not select.select([self.packets], [], [], timeout)[0]:
            return None
        return self.packets.recv(65536)

    def _flood_error(self, what: str) -> TargetError:
        return self._broken(what)

    def _malformed(self, raw: bytes, exc: MalformedPacket) -> str:
        # The contract: one datagram is one well-formed IPv4 packet carrying TCP.
        raise self._broken(f"a malformed packet ({exc}): {raw[:24].hex()}") from None

    def _after_packets(self, step: Step, expect: int, real_wait: bool) -> None:
        if len(step.segments) < expect or (real_wait and not step.segments):
            # A hung agent looks like a stack that sends nothing: before that counts as
            # the stack's doing, the agent must answer a line (any v1 agent does: `ok`,
            # or `error` for a command it does not know).  An agent that reads its
            # packets before its commands has sent, by its answer, every segment its
            # input made: those that came late (a loaded machine) are taken too.
            self._ask("ping")
            while self._take(0.0, step):
                pass

    # ------------------------------------------------------ the application

    def _accept(self) -> None:
        if self.passive and not self.accepted and self._ask("accept") == "accepted":
            self.accepted = True

    def call(self, call: AppCall) -> None:
        self._accept()
        if call.name is CallName.SEND:
            reply = self._ask("send " + call.data.hex())
            if reply.startswith("ok ") and int(reply[3:]) > len(call.data):
                raise self._broken(f"reply {shown(reply)} to a send of {len(call.data)} octets")
            self.notes.append(f"{call}: {reply}")
        elif call.name is CallName.RECV:
            self._recv()
        elif call.name is CallName.SHUTDOWN:
            self.notes.append(f"{call}: {self._ask('shutdown')}")
        else:
            self.notes.append(f"{call}: {self._ask('abort')}")
            self.recv_pending = False

    def _read(self) -> bytes | None:
        reply = self._ask("recv")
        if reply.startswith("data "):
            return bytes.fromhex(reply[5:])
        if reply == "eof":
            return b""
        if reply == "errno EAGAIN":
            return None
        raise ReadFailed(reply.removeprefix("errno "))

    def wait(self) -> None:
        super().wait()
        if not self.traits.spontaneous_timers:
            self._ask("wait")  # virtual time: the agent fires its next timer

    def _drain(self) -> None:
        """Drop what the agent sent before this example (bounded: it may flood)."""
        for _ in range(self.max_packets):
            if not select.select([self.packets], [], [], 0)[0]:
                return
            self.packets.recv(65536)
        raise self._broken(f"more than {self.max_packets} packets after a reset (a flood)")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.proc.poll() is None and self.proc.stdin is not None:
                os.write(self.proc.stdin.fileno(), b"quit\n")  # non-blocking: may not fit
        try:
            self.proc.wait(timeout=0 if self.broken else 2)
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
