"""Writing reports: one place for `--json FILE|-`, and what happens when a write fails.

Paths are checked before the work starts (`validate`), but a write can
still fail after it (a full disk, /dev/full).  The report is then never
lost: it is written to REPORTS (or the temporary folder) instead, one
line says where, and `unwritten()` tells `cli.main` to apply the rule of
docs/exit-status.md (a verdict keeps exit 1; otherwise the run exits 2).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO, cast

from synack.harness.common.exits import write_somewhere

REPORTS = Path(".synack") / "reports"
"""Where each command keeps its latest report (project-local); `synack docs` shows them."""

_state = {"command": "synack"}
_unwritten: list[str] = []  # what could not be written where it was asked to go
_said: set[str] = set()  # progress lines already printed


class StdoutFailed(OSError):
    """Standard output cannot be written (a full disk, /dev/full, a closed pipe's reader)."""


class _GuardedStdout:
    """sys.stdout, but a failed write or flush raises StdoutFailed (told apart from a bug)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutFailed(exc.errno, exc.strerror) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutFailed(exc.errno, exc.strerror) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Make a failing standard output raise StdoutFailed (see `cli.main`)."""
    if not isinstance(sys.stdout, _GuardedStdout):
        sys.stdout = cast(TextIO, _GuardedStdout(sys.stdout))


def _speaker() -> str:
    """Who a message is from: `synack COMMAND`, or `synack` outside a command."""
    command = _state["command"]
    return "synack" if command == "synack" else f"synack {command}"


def begin(command: str) -> None:
    """Start of a command: name it in messages, forget earlier failed writes."""
    _state["command"] = command
    _unwritten.clear()


def progress_line(text: str) -> None:
    """With SYNACK_PROGRESS=lines, say on stderr (once per text) that the work is under way.

    For whatever drives synack and must know when the work has started (a
    test that interrupts it, a supervisor); a terminal shows a live bar instead.
    """
    if os.environ.get("SYNACK_PROGRESS") != "lines" or text in _said:
        return
    _said.add(text)
    print(f"{_speaker()}: {text}", file=sys.stderr, flush=True)


def unwritten() -> list[str]:
    """What this run could not write where it was asked to (each already said in a line)."""
    return list(_unwritten)


def save_latest(command: str, report: object) -> None:
    """Keep `report` as the latest of `command` in REPORTS; a read-only tree is no error."""
    try:
        REPORTS.mkdir(parents=True, exist_ok=True)
        (REPORTS / f"{command}.json").write_text(json.dumps(report, indent=2) + "\n")
    except OSError:
        pass


def _keep_elsewhere(text: str) -> Path | None:
    """Write `text` to a new file in REPORTS, else in the temporary folder; its path."""
    name = f"{_state['command']}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-unwritten.json"
    return write_somewhere(REPORTS, name, text)


def write_failed(what: str, exc: OSError, text: str | None = None) -> None:
    """Say in one line that `what` could not be written, and where `text` went instead."""
    _unwritten.append(what)
    saved = _keep_elsewhere(text) if text is not None else None
    where = f"; the report is in {saved}" if saved else ""
    if text is not None and saved is None:
        where = "; it could not be saved anywhere else either"
    reason = exc.strerror or str(exc)
    print(f"{_speaker()}: error: cannot write {what}: {reason}{where}", file=sys.stderr)


def write_json(target: str | None, report: object) -> None:
    """Write `report` as JSON to the file `target`, to stdout for '-', nowhere for None."""
    if not target:
        return
    text = json.dumps(report, indent=2) + "\n"
    try:
        if target == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            Path(target).write_text(text)
    except OSError as exc:
        write_failed("standard output" if target == "-" else target, exc, text)
