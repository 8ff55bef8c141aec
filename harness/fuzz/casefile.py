"""Replay files as data: reading them safely and checking every field before use.

A replay file may come from anywhere, so it is read with a size limit,
parsed without letting deep nesting or huge numbers escape as exceptions,
and checked field by field (types, and bounds on every size and count).
The bounds are what synack itself ever writes: a fuzz example has at most
`MAX_ACTIONS` actions and the sizes `fuzz` generates; a check
counterexample at most `MAX_STEPS` steps on a network `synack check` can
explore.  Anything else is refused with one line naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synack.harness.fuzz.fuzzing import MAX_ACTIONS
from synack.model.seq import MASK

Json = dict[str, Any]

MAX_CASE_BYTES = 8 * 2**20
"""A saved case is a few kilobytes; a larger file is not one."""
MAX_INJECT_SIZE = 40
"""Octets of text in an injected segment (fuzz: `_SIZES`, at most 40)."""
MAX_CALL_SIZE = 20
"""Octets of a SEND call (fuzz: `_CALL_SIZE`, 1 to 20)."""
MAX_URGENT = 8
"""The urgent pointer of an injected segment (fuzz: `_UP`, 0 to 8)."""
MAX_STEPS = 1000
"""Steps of a check counterexample (a shortest path: far fewer than the depth limit)."""
MAX_CAPACITY, MAX_DUP = 4, 4
"""Network bounds of a check counterexample (the scenarios use 1 to 2 and 0 to 1): a
liveness replay explores from where the path ends, and more would not finish."""
MAX_PAYLOAD = 65535
"""Octets of text in a check counterexample's segment (the most one TCP segment carries)."""
MAX_TEXT = 10_000
"""Characters of any string field (target, summaries, flags)."""
MAX_RECORDS = 4 * MAX_ACTIONS + 4
"""Informational lists of a finding (its steps, segments observed and expected)."""


class CaseError(ValueError):
    """A replay file that is not what synack writes (the message names the field)."""


def _no_constant(name: str) -> None:
    raise CaseError(f"{name} is not a number JSON allows")


def read_case(name: str) -> Json:
    """The JSON object in file `name`; raises CaseError with a one-line reason."""
    path = Path(name)
    if path.is_dir():
        raise CaseError(f"{name} is a directory, not a replay file")
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_CASE_BYTES + 1)
    except OSError as exc:
        raise CaseError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CASE_BYTES:
        raise CaseError(f"{name} is larger than {MAX_CASE_BYTES // 2**20} MiB: not a replay file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CaseError(f"{name} is not UTF-8 text: not a replay file") from None
    if not text.strip():
        raise CaseError(f"{name} is empty")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise CaseError(f"{name}: JSON nested too deeply: not a replay file") from None
    except json.JSONDecodeError as exc:
        raise CaseError(f"{name} is not JSON: {exc.msg} (line {exc.lineno})") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        first = next(iter(str(exc).splitlines()), "")
        raise CaseError(f"{name} is not a replay file: {first}") from None
    if not isinstance(data, dict):
        raise CaseError(f"{name} holds a JSON {_kind(data)}, not an object")
    return data


# ----------------------------------------------------------- field checks

_NAMES = {
    bool: "true/false",
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _kind(value: object) -> str:
    """The JSON name of `value`'s type."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


def _is(value: object, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return type(value) in kinds


def field(obj: Json, key: str, where: str, *kinds: type, optional: bool = False) -> Any:
    """obj[key], which must be of one of `kinds`; `where` names obj in messages."""
    name = f"{where}.{key}" if where else key
    if key not in obj:
        if optional:
            return None
        raise CaseError(f"{name}: missing")
    value = obj[key]
    if not _is(value, kinds):
        wanted = " or ".join(_NAMES[k] for k in kinds)
        raise CaseError(f"{name}: expected {wanted}, not {_short(value)}")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise CaseError(f"{name}: more than {MAX_TEXT} characters")
    return value


def _short(value: object) -> str:
    """`value` as JSON in at most 40 characters, after its type ("null" alone)."""
    if value is None:
        return "null"
    return f"{_kind(value)} {_clip(value)}"


def _clip(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def number(obj: Json, key: str, where: str, low: int, high: int, optional: bool = True) -> None:
    """obj[key] is a whole number in [low, high] (or absent, if `optional`)."""
    value = field(obj, key, where, int, optional=optional)
    if value is not None and not low <= value <= high:
        name = f"{where}.{key}" if where else key
        raise CaseError(f"{name}: {value} is outside {low}..{high} (what synack ever writes)")


def items(
    obj: Json, key: str, where: str, limit: int, check: Callable[[Any, str], None], optional: bool
) -> None:
    """obj[key] is a list of at most `limit` items, each passing `check(item, its name)`."""
    values = field(obj, key, where, list, optional=optional)
    if values is None:
        return
    name = f"{where}.{key}" if where else key
    if len(values) > limit:
        raise CaseError(f"{name}: {len(values)} items, more than {limit} (what synack ever writes)")
    for index, value in enumerate(values):
        check(value, f"{name}[{index}]")


def obj(value: object, where: str) -> Json:
    if not isinstance(value, dict):
        raise CaseError(f"{where}: expected an object, not {_short(value)}")
    return value


def text(value: object, where: str) -> None:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise CaseError(f"{where}: expected text, not {_short(value)}")


def segment(value: object, where: str, payload: int = MAX_PAYLOAD) -> None:
    data = obj(value, where)
    field(data, "flags", where, str)
    number(data, "seq", where, 0, MASK, optional=False)
    for key in ("ack", "wnd"):
        number(data, key, where, 0, MASK)
    number(data, "up", where, 0, 0xFFFF)
    octets = field(data, "payload", where, str, optional=True)
    if octets is not None and len(octets) > 2 * payload:
        raise CaseError(f"{where}.payload: more than {payload} octets")


# ------------------------------------------------------ check counterexample

STEP_KINDS = ("call", "timeout", "deliver", "deliver+duplicate", "lose")


def check_step(value: object, where: str) -> None:
    step = obj(value, where)
    kind = field(step, "kind", where, str)
    if kind not in STEP_KINDS:
        raise CaseError(f"{where}.kind: {_clip(kind)} is none of {', '.join(STEP_KINDS)}")
    field(step, "actor", where, str, optional=kind not in ("call", "timeout"))
    if kind == "timeout":
        field(step, "timer", where, str)
    if kind in ("deliver", "deliver+duplicate", "lose"):
        field(step, "direction", where, str)
        segment(step.get("segment"), f"{where}.segment")
        number(step, "incarnation", where, 0, MAX_STEPS, optional=False)
    field(step, "op", where, str, optional=True)
    items(step, "sent", where, MAX_STEPS, text, optional=True)
    items(step, "signals", where, MAX_STEPS, text, optional=True)
    field(step, "after", where, dict, optional=True)


def check_counterexample(case: Json) -> None:
    """Every field `synack replay` reads from a `check --out` case, and its bounds."""
    field(case, "property", "", str)
    field(case, "scenario", "", str)
    field(case, "profile", "", str, optional=True)
    field(case, "variant", "", str, type(None), optional=True)
    field(case, "eager_timers", "", bool, optional=True)
    network = field(case, "network", "", dict)
    number(network, "capacity", "network", 1, MAX_CAPACITY, optional=False)
    number(network, "dup", "network", 0, MAX_DUP, optional=False)
    field(network, "loss", "network", bool)
    field(network, "reorder", "network", bool)
    items(case, "steps", "", MAX_STEPS, check_step, optional=False)
    field(case, "message", "", str, optional=True)


# ------------------------------------------------------------ fuzz finding


def pick(value: object, where: str) -> None:
    data = obj(value, where)
    field(data, "kind", where, str)
    number(data, "n", where, 0, MASK)  # reduced modulo a window or FAR: any 32-bit value


def action(value: object, where: str) -> None:
    data = obj(value, where)
    do = field(data, "do", where, str)
    if do == "inject":
        field(data, "flags", where, str)
        pick(data.get("seq"), f"{where}.seq")
        pick(data.get("ack"), f"{where}.ack")
        number(data, "size", where, 0, MAX_INJECT_SIZE)
        number(data, "up", where, 0, MAX_URGENT)
    elif do == "call":
        field(data, "call", where, str)
        number(data, "size", where, 0, MAX_CALL_SIZE)
    elif do != "wait":
        raise CaseError(f"{where}.do: {_clip(do)} is none of inject, call, wait")


def example(value: object, where: str) -> None:
    data = obj(value, where)
    field(data, "role", where, str)
    number(data, "peer_iss", where, 0, MASK, optional=False)
    number(data, "target_iss", where, 0, MASK, optional=False)
    items(data, "actions", where, MAX_ACTIONS, action, optional=False)


def _expected(value: object, where: str) -> None:
    data = obj(value, where)
    field(data, "from", where, str)
    items(data, "segments", where, MAX_RECORDS, segment, optional=False)


def _record(value: object, where: str) -> None:
    data = obj(value, where)
    field(data, "action", where, str)
    if data.get("sent") is not None:
        segment(data["sent"], f"{where}.sent")
    for key in ("states", "results", "anomalies", "after"):
        items(data, key, where, MAX_RECORDS, text, optional=True)
    items(data, "observed", where, MAX_RECORDS, segment, optional=True)


def check_finding(case: Json) -> None:
    """Every field `synack replay` reads from a fuzz finding, and its bounds."""
    version = field(case, "version", "", int, optional=True)
    if version not in (None, 1):
        raise CaseError(f"version: {version} (this synack reads version 1)")
    target = field(case, "target", "", str)
    if not target.isprintable():
        raise CaseError("target: not printable text")
    field(case, "profile", "", str)
    example(case.get("example"), "example")
    divergence = obj(case.get("divergence"), "divergence")
    number(divergence, "step", "divergence", 0, MAX_RECORDS, optional=False)
    field(divergence, "event", "divergence", str)
    field(divergence, "summary", "divergence", str, optional=True)
    items(divergence, "states", "divergence", MAX_RECORDS, text, optional=True)
    items(divergence, "observed", "divergence", MAX_RECORDS, segment, optional=False)
    items(divergence, "expected", "divergence", MAX_RECORDS, _expected, optional=True)
    field(case, "explanation", "", str, type(None), optional=True)
    field(case, "flaky", "", bool, optional=True)
    items(case, "steps", "", MAX_RECORDS, _record, optional=True)
    for key in ("pcap", "chart", "replay"):
        field(case, key, "", str, optional=True)


def built_in(target: str) -> bool:
    """Whether a target named in a file may run: built in, never a command or a module.

    model, variant:NAME, linux and the stacks synack builds from its own
    sources (lwip, gvisor, slirp); not agent:CMD nor python:MODULE:FACTORY.
    """
    from synack.harness.fuzz.targets.stacks import STACKS

    return target in ("model", "linux") or target in STACKS or target.startswith("variant:")
