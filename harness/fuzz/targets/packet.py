"""What the packet targets share: the kernel (linux.py) and the agents (agent.py).

Both put raw IPv4 segments on a wire and read the stack's replies from it.
"""

from __future__ import annotations

from collections.abc import Callable

from synack.model.types import Deliver

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
