"""What the fuzzer tests: one small interface that every target implements.

A target is one TCP endpoint that the fuzzer talks to as its peer.  The
fuzzer starts it (`start`: a fresh connection context with a listen() or
connect()), then alternates one action with one `collect`:

- `inject(segment)`: a segment from the peer arrives at the target;
- `call(call)`: the target's application makes a socket call;
- `wait()`: time passes until the target's next timer would have fired;
- `collect(expect)`: what the target emitted since the last collect:
  segments, and what its application was told (replies, delivered text).

The targets by name are in registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from synack.model.segment import Segment
from synack.model.types import (
    AbortCall,
    CloseCall,
    Deliver,
    Event,
    ReceiveCall,
    SendCall,
    Signal,
)


class Role(Enum):
    """Which open the target's application makes."""

    PASSIVE = "passive"  # listen(); the fuzzer sends the SYN
    ACTIVE = "active"  # connect(); the target sends the SYN


class CallName(Enum):
    """The application calls the fuzzer makes on the target's side."""

    SEND = "send"
    RECV = "recv"
    SHUTDOWN = "shutdown"  # CLOSE: shutdown(SHUT_WR)
    ABORT = "abort"  # close() with SO_LINGER {on, 0}


@dataclass(frozen=True, slots=True)
class AppCall:
    name: CallName
    data: bytes = b""

    def __str__(self) -> str:
        return f"send({len(self.data)})" if self.name is CallName.SEND else f"{self.name.value}()"

    def event(self) -> Event:
        """The model's user call for this socket call."""
        if self.name is CallName.SEND:
            return SendCall(self.data)
        if self.name is CallName.RECV:
            return ReceiveCall()
        if self.name is CallName.SHUTDOWN:
            return CloseCall()
        return AbortCall()


UserOutput = Signal | Deliver


@dataclass(frozen=True, slots=True)
class Observation:
    """What a target did in response to one action."""

    segments: tuple[Segment, ...] = ()
    user: tuple[UserOutput, ...] = ()
    packets: tuple[tuple[float, bytes], ...] = ()  # raw IPv4, when the target has a wire
    anomalies: tuple[str, ...] = ()
    results: tuple[str, ...] = ()  # what the application's calls returned (errno, ...)


@dataclass(frozen=True, slots=True)
class Traits:
    """How far the oracle may compare a target's outputs with the model's."""

    exact_windows: bool  # SEG.WND is predicted (in-process) or learned from the target
    user_outputs: bool  # replies ("connection reset", ...) are observable and compared
    spontaneous_timers: bool  # a timer may fire during any action (real time passes)
    calls_in_any_state: bool  # application calls are meaningful before ESTABLISHED
    holds_out_of_order: bool  # text above RCV.NXT is queued (SHLD-31), not dropped
    slow_waits: bool = False  # `wait()` takes real time (seconds): generate waits rarely
    keeps_listener: bool = True  # listen() goes on after accept() (Config.listener_kept)
    congestion_control: bool = False  # a congestion window may hold new segments back
    # Config choices the target makes afresh for each arriving text segment,
    # invisibly to us: the oracle tries either value (Config.header_prediction).
    varies: tuple[str, ...] = ()


class Target(Protocol):
    name: str
    traits: Traits

    def start(self, role: Role, iss: int) -> None:
        """A fresh connection context; listen() or connect().  `iss` is a hint."""

    def inject(self, segment: Segment) -> None: ...

    def call(self, call: AppCall) -> None: ...

    def wait(self) -> None: ...

    def collect(self, expect: int) -> Observation:
        """Everything emitted since the last collect; waits boundedly for `expect` segments."""

    def close(self) -> None: ...


class TargetError(RuntimeError):
    """The target cannot be set up or stopped answering: one line for the user."""
