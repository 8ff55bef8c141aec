"""Checks on the command line, made before any work starts.

Numbers: argparse types that refuse NaN, infinities and out-of-range
values with a one-line usage error.  Paths: every file or folder a
command will write is checked first (a probe file is created and removed
where the path does not exist yet), so that a run of minutes never ends
with "cannot write".
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from pathlib import Path


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, budgets, timeouts)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (0 meaning: none of it)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def nonnegative_int(text: str) -> int:
    """A whole number >= 0 (seeds, bounds where 0 means none)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


# ------------------------------------------------------------------ paths


def _probe(folder: Path) -> str | None:
    """Why a file cannot be created in the existing folder `folder`, or None."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".synack-probe-"):
            pass
    except OSError as exc:
        return f"cannot create files in {folder}: {exc.strerror or exc}"
    return None


def _existing_ancestor(path: Path) -> Path:
    for folder in path.absolute().parents:
        if folder.exists():
            return folder
    return Path("/")


def output_file_problem(name: str) -> str | None:
    """Why the report file `name` ('-': stdout) cannot be written, or None."""
    if name == "-":
        return None
    path = Path(name)
    if path.is_dir():
        return f"{name} is a directory, not a file"
    if path.exists():
        try:
            with path.open("a"):  # append mode: the file's content is left alone
                pass
        except OSError as exc:
            return f"cannot write {name}: {exc.strerror or exc}"
        return None
    parent = path.absolute().parent
    if not parent.is_dir():
        return f"cannot write {name}: folder {parent} does not exist"
    return _probe(parent)


def output_dir_problem(name: str) -> str | None:
    """Why the folder `name` cannot be created or written into, or None."""
    path = Path(name)
    if path.exists() and not path.is_dir():
        return f"{name} exists and is not a directory"
    if path.is_dir():
        return _probe(path)
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        return f"cannot create {name}: {ancestor} is not a directory"
    return _probe(ancestor)


def input_dir_problem(name: str) -> str | None:
    """Why `name` is no folder to read from (a missing one is fine: nothing to read)."""
    path = Path(name)
    if path.exists() and not path.is_dir():
        return f"{name} is not a directory"
    return None


PathCheck = Callable[[str], "str | None"]

PATH_OPTIONS: dict[str, PathCheck] = {
    "json": output_file_problem,
    "out": output_dir_problem,
    "db": output_dir_problem,
    "cache": output_dir_problem,
    "reports": input_dir_problem,
}
"""Options (by their argparse dest) that name a path, and how each is checked."""

UNUSED_WHEN = {"cache": "no_cache", "reports": "no_reports"}
"""A path option that a flag switches off is not checked when the flag is given."""


def path_problem(args: argparse.Namespace) -> str | None:
    """The first path option of `args` that cannot be used, as '--opt: why'; or None."""
    for dest, problem in PATH_OPTIONS.items():
        value = getattr(args, dest, None)
        if not isinstance(value, str) or getattr(args, UNUSED_WHEN.get(dest, ""), False):
            continue
        if not value:
            return f"--{dest}: an empty path"
        why = problem(value)
        if why is not None:
            return f"--{dest.replace('_', '-')}: {why}"
    return None


def number_problem(args: argparse.Namespace) -> str | None:
    """A safety net for options parsed as plain floats: NaN and infinities are refused."""
    for dest, value in sorted(vars(args).items()):
        if isinstance(value, float) and not math.isfinite(value):
            return f"--{dest.replace('_', '-')}: {value!r} is not a finite number"
    return None
