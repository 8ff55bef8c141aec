"""States, events and outputs of one TCP endpoint (RFC 9293 sections 3.3.2, 3.10).

`step(tcb, event)` consumes one of the events below and returns the new
TCB with a tuple of outputs.  Time and the choice of initial sequence
numbers are inputs, never read from a clock or a random source: a timer
is armed by a `TimerSet` output and fires when the caller feeds the
matching `Timeout` event back in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .segment import Segment


class State(Enum):
    """The eleven connection states of RFC 9293 section 3.3.2."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    def __str__(self) -> str:
        return self.value


SYNCHRONIZED = frozenset(
    {
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    }
)
"""States in which both sequence spaces are synchronized (RFC 9293 3.5)."""

FIN_RECEIVED = frozenset({State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK, State.TIME_WAIT})
"""States in which the peer's FIN has been received and acknowledged."""


class TimerKind(Enum):
    """The timeouts of RFC 9293 section 3.10.8."""

    RETRANSMISSION = "retransmission"
    TIME_WAIT = "time-wait"
    USER = "user"


class Reply(Enum):
    """Responses and signals to the user; the values are RFC 9293's strings."""

    OK = "ok"
    CONNECTION_RESET = "connection reset"
    CONNECTION_REFUSED = "connection refused"
    CONNECTION_CLOSING = "connection closing"
    ERROR_CONNECTION_CLOSING = "error: connection closing"
    ERROR_CLOSING = "error: closing"
    ERROR_DOES_NOT_EXIST = "error: connection does not exist"
    ERROR_ALREADY_EXISTS = "error: connection already exists"
    ERROR_REMOTE_UNSPECIFIED = "error: remote socket unspecified"
    ERROR_USER_TIMEOUT = "error: connection aborted due to user timeout"
    ERROR_TIMED_OUT = "error: connection timed out"
    URGENT = "urgent data"

    @property
    def is_error(self) -> bool:
        return self.value.startswith("error") or self in (
            Reply.CONNECTION_RESET,
            Reply.CONNECTION_REFUSED,
        )


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class OpenCall:
    """OPEN (3.10.1).  Active opens send a SYN; `iss` overrides the ISN generator.

    `remote`: a passive OPEN with the remote socket specified (listen() leaves
    it unspecified); a SEND on such a LISTEN connection makes it active.
    """

    active: bool
    iss: int | None = None
    remote: bool = False


@dataclass(frozen=True, slots=True)
class SendCall:
    """SEND (3.10.2) of `data` on the connection."""

    data: bytes
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class ReceiveCall:
    """RECEIVE (3.10.3): take whatever text is queued for the user."""


@dataclass(frozen=True, slots=True)
class CloseCall:
    """CLOSE (3.10.4): "I have no more to send" (shutdown(SHUT_WR) / close())."""


@dataclass(frozen=True, slots=True)
class AbortCall:
    """ABORT (3.10.5): close() with SO_LINGER {on, 0}."""


@dataclass(frozen=True, slots=True)
class SegmentArrives:
    """SEGMENT ARRIVES (3.10.7)."""

    segment: Segment


@dataclass(frozen=True, slots=True)
class Timeout:
    """A timer armed earlier by `TimerSet` expires (3.10.8)."""

    kind: TimerKind


Event = OpenCall | SendCall | ReceiveCall | CloseCall | AbortCall | SegmentArrives | Timeout
EVENT_KINDS: tuple[type, ...] = (
    OpenCall,
    SendCall,
    ReceiveCall,
    CloseCall,
    AbortCall,
    SegmentArrives,
    Timeout,
)

# --------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Emit:
    """A segment handed to the network."""

    segment: Segment


@dataclass(frozen=True, slots=True)
class Signal:
    """A response or unsolicited signal to the user."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Deliver:
    """Text handed to the user by a RECEIVE."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TimerSet:
    """Arm (or restart) a timer."""

    kind: TimerKind


@dataclass(frozen=True, slots=True)
class TimerCancel:
    """Disarm a timer."""

    kind: TimerKind


Output = Emit | Signal | Deliver | TimerSet | TimerCancel
