"""Children that die with synack: every process synack starts uses `die_with_parent()`.

A child started with `preexec_fn=die_with_parent()`:

- gets the default signal dispositions back (a run started from a
  non-interactive shell inherits SIGINT as ignored; see
  `exits.reset_signals_in_child`);
- asks the kernel for SIGKILL when its parent dies
  (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), so that an agent which ignores the
  end of its input, or SIGTERM, does not live on under PID 1 after synack
  is killed with SIGKILL.  The kernel sends it when the *thread* that forked
  the child exits, so a long-lived child must be started from a thread that
  lives as long as it is needed (the main thread, for agents).

If the parent died between fork() and prctl() the child exits at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable

from synack.harness.common.exits import reset_signals_in_child

PR_SET_PDEATHSIG = 1

try:
    _prctl: Callable[..., int] | None = ctypes.CDLL(
        ctypes.util.find_library("c") or "libc.so.6", use_errno=True
    ).prctl  # resolved before any fork: the child only calls it
except (OSError, AttributeError):  # not Linux: no parent-death signal, the rest still holds
    _prctl = None


def die_with_parent() -> Callable[[], None]:
    """A `preexec_fn` for subprocess: default signals, and SIGKILL when synack dies."""
    parent = os.getpid()

    def setup() -> None:
        reset_signals_in_child()
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:  # the parent is already gone
                os._exit(1)

    return setup
