"""Application scripts: the socket calls one side's program makes, in order.

An op is either a call (it runs one user call on the endpoint) or a wait
(it blocks until the endpoint reaches a condition).  A wait also ends when
the endpoint is CLOSED without reaching its condition: the program then
sees an error, as a blocked accept()/connect()/read() would.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .tcb import Tcb
from .types import (
    FIN_RECEIVED,
    SYNCHRONIZED,
    AbortCall,
    CloseCall,
    Event,
    OpenCall,
    SendCall,
    State,
)


class Wait(Enum):
    """Conditions a blocking call waits for."""

    ESTABLISHED = "established"  # accept() / connect() returns
    EOF = "eof"  # read() returns 0: the peer's FIN has arrived
    CLOSED = "closed"  # the TCB is gone (after TIME-WAIT, LAST-ACK, RST, ...)

    def reached(self, tcb: Tcb) -> bool:
        if self is Wait.ESTABLISHED:
            return tcb.state in SYNCHRONIZED
        if self is Wait.EOF:
            return tcb.state in FIN_RECEIVED
        return tcb.state is State.CLOSED


@dataclass(frozen=True, slots=True)
class Op:
    """One step of an application script."""

    name: str
    call: Event | None = None
    wait: Wait | None = None
    new_incarnation: bool = False
    needs_closed: bool = False

    def __str__(self) -> str:
        return self.name


def listen() -> Op:
    return Op("listen()", call=OpenCall(active=False), new_incarnation=True, needs_closed=True)


def connect(iss: int) -> Op:
    """connect() with the ISN the client's generator picks for this incarnation."""
    return Op(
        f"connect(iss={iss})",
        call=OpenCall(active=True, iss=iss),
        new_incarnation=True,
        needs_closed=True,
    )


def accept() -> Op:
    return Op("accept()", wait=Wait.ESTABLISHED)


def await_connected() -> Op:
    return Op("connected", wait=Wait.ESTABLISHED)


def send(data: bytes) -> Op:
    return Op(f"send({len(data)} bytes)", call=SendCall(data))


def shutdown_wr() -> Op:
    return Op("shutdown(SHUT_WR)", call=CloseCall())


def close() -> Op:
    return Op("close()", call=CloseCall())


def abort() -> Op:
    """close() with SO_LINGER {on, 0}: the connection is reset."""
    return Op("close() with SO_LINGER 0", call=AbortCall())


def read_eof() -> Op:
    return Op("read() until EOF", wait=Wait.EOF)


def await_closed() -> Op:
    return Op("wait until CLOSED", wait=Wait.CLOSED)
