"""The exit-status contract, the same for every command, and how signals end a run.

0 all good; 1 a verdict (a property violated, a finding, a replay
reproduced) and nothing else; 2 bad usage, bad set-up or a target that
breaks down; 3 unknown or incomplete (a limit stopped the work first);
4 an internal error (one line, the traceback saved to a file); 130 / 143
after SIGINT / SIGTERM, with the partial results saved.

SIGTERM is turned into `Terminated`, a KeyboardInterrupt, so that every
path that saves partial results on Ctrl-C does the same for a `timeout`
or a CI runner cancelling the job; `interrupted_status()` says which of
the two it was.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import FrameType

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_INTERNAL = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

CONTRACT = (
    "Exit status, the same for every command: 0 all good; 1 a verdict (a property violated, "
    "a finding, a replay reproduced) and nothing else; 2 bad usage, bad set-up or a target "
    "that breaks down; 3 unknown or incomplete (a limit stopped the work first); 4 an internal "
    "error (one line, the traceback saved to a file); 130 / 143 after SIGINT / SIGTERM, partial "
    "results saved."
)

_received: list[int] = []  # the signals that asked this run to stop, in order


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so that partial results are saved alike."""


def note_signal(signum: int) -> None:
    """Remember that `signum` asked the run to stop (for the exit status)."""
    _received.append(signum)


def stop_requested() -> bool:
    return bool(_received)


def interrupted_status() -> int:
    """130 after SIGINT, 143 after SIGTERM (the first signal that asked to stop)."""
    if _received and _received[0] == signal.SIGTERM:
        return EXIT_SIGTERM
    return EXIT_SIGINT


def status_of(exc: KeyboardInterrupt) -> int:
    if isinstance(exc, Terminated) or (_received and _received[0] == signal.SIGTERM):
        return EXIT_SIGTERM
    return EXIT_SIGINT


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    note_signal(signum)
    raise Terminated


def install_sigterm() -> None:
    """SIGTERM raises `Terminated` in the main thread (as SIGINT raises KeyboardInterrupt)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def reset_signals_in_child() -> None:
    """For a child process: default dispositions, whatever the parent inherited.

    A test started from a non-interactive background shell inherits SIGINT
    as ignored; a child that should die of it (or handle it) must reset it.
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


def save_traceback(command: str) -> Path | None:
    """Write the current exception's traceback to a file; its path, or None if nowhere."""
    text = f"synack {command}: {' '.join(sys.argv)}\n\n{traceback.format_exc()}"
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    return write_somewhere(Path(".synack"), name, text)


def write_somewhere(folder: Path, name: str, text: str) -> Path | None:
    """Write `text` as `name` in `folder`, else in the temporary folder; where, or None."""
    for where in (folder, Path(tempfile.gettempdir())):
        try:
            where.mkdir(parents=True, exist_ok=True)
            path = where / name
            path.write_text(text)
            return path.resolve()
        except OSError:
            continue
    return None
