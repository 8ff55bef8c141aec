"""Helpers for driving endpoints by hand in tests."""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import sys
import time
from typing import IO

import pytest

from synack.harness.common.exits import reset_signals_in_child
from synack.model import (
    CloseCall,
    Config,
    Emit,
    OpenCall,
    Output,
    Segment,
    SegmentArrives,
    Signal,
    Tcb,
    closed,
    step,
)
from synack.model.types import Event


def emitted(outputs: tuple[Output, ...]) -> list[Segment]:
    return [o.segment for o in outputs if isinstance(o, Emit)]


def signals(outputs: tuple[Output, ...]) -> list[object]:
    return [o.reply for o in outputs if isinstance(o, Signal)]


def one_segment(outputs: tuple[Output, ...]) -> Segment:
    segments = emitted(outputs)
    assert len(segments) == 1, f"expected one segment, got {[str(s) for s in segments]}"
    return segments[0]


def feed(tcb: Tcb, *events: Event) -> tuple[Tcb, tuple[Output, ...]]:
    """Apply events in order; return the last TCB and all outputs."""
    outputs: tuple[Output, ...] = ()
    for event in events:
        tcb, out = step(tcb, event)
        outputs += out
    return tcb, outputs


def established_pair(
    client_iss: int = 100, server_iss: int = 300, cfg: Config | None = None
) -> tuple[Tcb, Tcb]:
    """Client and server after a clean three-way handshake."""
    cfg = cfg or Config()
    client, server = closed(cfg), closed(cfg, (server_iss,))
    server, _ = step(server, OpenCall(active=False))
    client, out = step(client, OpenCall(active=True, iss=client_iss))
    server, out = step(server, SegmentArrives(one_segment(out)))
    client, out = step(client, SegmentArrives(one_segment(out)))
    server, _ = step(server, SegmentArrives(one_segment(out)))
    return client, server


def close_until_peer_fin(active: Tcb, passive: Tcb) -> tuple[Tcb, Tcb, Segment, tuple[Output, ...]]:
    """The active side closes, the passive side ACKs and closes too.

    Returns (active, passive, the passive side's FIN, the active side's
    outputs on receiving it), with the FIN delivered once.
    """
    active, out = step(active, CloseCall())
    passive, out = step(passive, SegmentArrives(one_segment(out)))
    active, _ = step(active, SegmentArrives(one_segment(out)))
    passive, out = step(passive, CloseCall())
    fin = one_segment(out)
    active, out = step(active, SegmentArrives(fin))
    return active, passive, fin, out


REQUIRED_SCENARIOS = (
    "handshake",
    "lifecycle",
    "half-close",
    "simultaneous-open",
    "simultaneous-close",
    "reconnect",
    "abort",
    "refused",
    "syn-loss",
)


def require_tool(name: str) -> str:
    """The path of an external program a test needs.

    Without it the test is skipped, except under CI (the CI environment
    variable set), where a missing tool is a failure: CI must run the test.
    """
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI is set: CI must run this test")
        pytest.skip(reason)
    return path


def require_netns() -> None:
    """Skip the calling test unless a private network namespace with TUN works here.

    Under CI (the CI environment variable set) an unusable environment is a
    failure instead: CI must run these tests.
    """
    import os

    import pytest

    from synack.harness.fuzz.targets.netns import preflight

    reason = preflight()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"network namespace tests cannot run ({reason}), and CI is set")
    pytest.skip(f"network namespace tests cannot run: {reason}")


def require_stack(name: str) -> None:
    """Skip the calling test unless stack `name`'s agent can be built here (its Debian
    packages installed); under CI a missing package is a failure: CI must run it."""
    from synack.harness.fuzz.targets.stacks import STACKS, missing_parts

    missing = missing_parts(STACKS[name])
    if not missing:
        return
    reason = f"the {name} agent cannot be built: {', '.join(missing)} missing"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: CI must run this test")
    pytest.skip(reason)


def run_synack(
    *args: str,
    timeout: float = 900,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`synack ARGS` in a child process (this interpreter), its output captured.

    The child gets default signal dispositions whatever this process inherited
    (a background shell starts pytest with SIGINT ignored).
    """
    return subprocess.run(
        [sys.executable, "-m", "synack.harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        preexec_fn=reset_signals_in_child,
    )


def wait_for_output(stream: IO[bytes], needle: bytes, timeout: float) -> bytes:
    """Read `stream` (a child's pipe) until `needle` appears; what was read.

    Fails the test if the child closes the pipe or `timeout` seconds pass
    first: a bounded wait for a readiness signal, never a fixed sleep.
    """
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while needle not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                pytest.fail(f"no {needle!r} within {timeout} s; got {seen[-500:]!r}")
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                pytest.fail(f"the child closed its output before {needle!r}: {seen[-500:]!r}")
            seen += chunk
    return seen
