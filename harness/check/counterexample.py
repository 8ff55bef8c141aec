"""Counterexamples: replayable JSON steps, a terminal sequence chart, Mermaid.

A counterexample is the list of actions from the initial state.  As JSON
each step names its actor and what happened, with enough detail (segment
fields, incarnation) to rebuild the exact action; `replay` re-runs the
steps through the model, refusing any step that is not enabled, so a
saved counterexample either reproduces or says where it stops fitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from synack.harness.check.explore import explore
from synack.harness.check.fingerprint import fingerprint
from synack.model.config import Profile, Variant
from synack.model.network import Direction, NetworkConfig
from synack.model.scenarios import get as get_scenario
from synack.model.segment import Flags, Segment
from synack.model.system import (
    Action,
    AppStep,
    DeliverSegment,
    Envelope,
    FireTimer,
    LoseSegment,
    Side,
    StepInfo,
    System,
    SystemState,
    enabled,
    transition,
)
from synack.model.types import Signal, TimerKind
from synack.properties.catalogue import Property

Json = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One replayed step: the action, what it did, and the state after it."""

    action: Action
    info: StepInfo
    before: SystemState
    after: SystemState


class ReplayError(ValueError):
    """A saved counterexample does not fit the system it names."""


def run(system: System, actions: Sequence[Action]) -> list[Step]:
    """Apply `actions` from the initial state, checking that each is enabled."""
    state, steps = system.initial, []
    for number, action in enumerate(actions, 1):
        try:
            after, info = transition(system, state, action)
        except ValueError as exc:
            raise ReplayError(f"step {number}: {exc}") from None
        steps.append(Step(action, info, state, after))
        state = after
    return steps


# ------------------------------------------------------------------ JSON


def segment_to_json(seg: Segment) -> Json:
    return {
        "flags": str(seg.flags),
        "seq": seg.seq,
        "ack": seg.ack,
        "wnd": seg.wnd,
        "payload": seg.payload.hex(),
        "up": seg.up,
    }


def segment_from_json(data: Json) -> Segment:
    flags = Flags(0)
    for name in str(data["flags"]).split(","):
        if name and name != "-":
            flags |= Flags[name]
    return Segment(
        flags,
        int(data["seq"]),
        int(data.get("ack", 0)),
        int(data.get("wnd", 0)),
        bytes.fromhex(str(data.get("payload", ""))),
        int(data.get("up", 0)),
    )


def step_to_json(step: Step) -> Json:
    action, info, after = step.action, step.info, step.after
    data: Json
    if isinstance(action, AppStep):
        data = {"actor": str(action.side), "kind": "call", "op": info.label.split(": ", 1)[1]}
    elif isinstance(action, DeliverSegment):
        data = {
            "actor": "network",
            "kind": "deliver+duplicate" if action.keep_copy else "deliver",
            "direction": str(action.direction),
            "segment": segment_to_json(action.envelope.segment),
            "incarnation": action.envelope.incarnation,
        }
    elif isinstance(action, LoseSegment):
        data = {
            "actor": "network",
            "kind": "lose",
            "direction": str(action.direction),
            "segment": segment_to_json(action.envelope.segment),
            "incarnation": action.envelope.incarnation,
        }
    else:
        data = {"actor": str(action.side), "kind": "timeout", "timer": action.kind.value}
    data["sent"] = [str(env.segment) for env in info.sent]
    data["signals"] = [o.reply.value for o in info.outputs if isinstance(o, Signal)]
    data["after"] = {
        "client": str(after.client.state),
        "server": str(after.server.state),
        "fingerprint": fingerprint(after),
    }
    return data


def action_from_json(data: Json) -> Action:
    kind = data.get("kind")
    if kind == "call":
        return AppStep(Side(data["actor"]))
    if kind == "timeout":
        return FireTimer(Side(data["actor"]), TimerKind(data["timer"]))
    if kind in ("deliver", "deliver+duplicate", "lose"):
        env = Envelope(segment_from_json(data["segment"]), int(data["incarnation"]))
        direction = Direction(data["direction"])
        if kind == "lose":
            return LoseSegment(direction, env)
        return DeliverSegment(direction, env, keep_copy=kind == "deliver+duplicate")
    raise ReplayError(f"unknown step kind {kind!r}")


def system_to_json(
    system: System, scenario: str, profile: Profile, variant: Variant | None
) -> Json:
    net = system.net_cfg
    return {
        "scenario": scenario,
        "profile": profile.value,
        "variant": variant.value if variant else None,
        "network": {
            "capacity": net.capacity,
            "dup": net.dup,
            "loss": net.loss,
            "reorder": net.reorder,
        },
        "eager_timers": system.eager_timers,
    }


def system_from_json(data: Json) -> System:
    """Rebuild the system a counterexample was found in."""
    try:
        variant = Variant(data["variant"]) if data.get("variant") else None
        net = NetworkConfig(**data["network"])
        return get_scenario(data["scenario"]).build(
            Profile(data.get("profile", "rfc9293")),
            variant,
            net,
            bool(data.get("eager_timers", False)),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ReplayError(f"cannot rebuild the system: {exc}") from None


def actions_from_json(steps: Sequence[Json]) -> list[Action]:
    try:
        return [action_from_json(step) for step in steps]
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ReplayError(f"malformed step: {exc}") from None


# ------------------------------------------------------------ rendering


def _event(step: Step) -> str:
    action, info = step.action, step.info
    if isinstance(action, AppStep):
        return info.label.split(": ", 1)[1]
    if isinstance(action, FireTimer):
        return f"{action.kind.value} timeout"
    seg = str(action.envelope.segment)
    if isinstance(action, LoseSegment):
        return f"lost: {seg}"
    dup = " (a copy stays)" if action.keep_copy else ""
    if action.direction is Direction.C2S:
        return f"──▶ {seg}{dup}"
    return f"{seg} ◀──{dup}"


def chart_rows(steps: Sequence[Step]) -> list[tuple[str, str, str, str]]:
    """(step number, client state, network column, server state) rows."""
    rows: list[tuple[str, str, str, str]] = []
    for number, step in enumerate(steps, 1):
        side = step.info.side
        who = f"{side}: " if isinstance(step.action, AppStep | FireTimer) else ""
        lines = [who + _event(step)]
        for env in step.info.sent:
            arrow = "──▶" if side is Side.CLIENT else "◀──"
            lines.append(f"  sends {arrow} {env.segment}")
        for env in step.info.overflowed:
            lines.append(f"  sends {env.segment}: network full, lost")
        for out in step.info.outputs:
            if isinstance(out, Signal):
                lines.append(f"  {side} is told: {out.reply.value}")
        after = step.after
        rows.append((str(number), str(after.client.state), lines[0], str(after.server.state)))
        rows.extend(("", "", line, "") for line in lines[1:])
    return rows


def chart(steps: Sequence[Step], width: int = 58) -> str:
    """A two-column message sequence chart: client | network | server."""
    head = f"{'#':>3}  {'client':<13} {'':<{width}} {'server'}"
    lines = [head]
    for number, client, middle, server in chart_rows(steps):
        lines.append(f"{number:>3}  {client:<13} {middle:<{width}} {server}")
    return "\n".join(lines)


def _mermaid_segment(seg: Segment) -> str:
    text = f"{seg.flags} seq={seg.seq}"
    if seg.has_ack:
        text += f" ack={seg.ack}"
    if seg.payload:
        text += f" len={len(seg.payload)}"
    return text


@dataclass(frozen=True)
class Exchange:
    """One row of a sequence diagram: a note or state on one side, or a segment.

    `kind` is "note", "state" or "segment"; a segment goes from `side` to
    the other side and may be `lost` or `duplicated`.
    """

    kind: str
    side: Side
    text: str
    lost: bool = False
    duplicated: bool = False


def exchanges(steps: Sequence[Step]) -> list[Exchange]:
    """The rows of the sequence diagram of `steps` (Mermaid and SVG draw the same)."""
    rows: list[Exchange] = []
    states = {Side.CLIENT: "CLOSED", Side.SERVER: "CLOSED"}
    for step in steps:
        action = step.action
        if isinstance(action, AppStep | FireTimer):
            rows.append(Exchange("note", action.side, _event(step)))
        else:
            sender = Side.CLIENT if action.direction is Direction.C2S else Side.SERVER
            seg = _mermaid_segment(action.envelope.segment)
            lost = isinstance(action, LoseSegment)
            dup = isinstance(action, DeliverSegment) and action.keep_copy
            rows.append(Exchange("segment", sender, seg, lost, dup))
        for side in Side:
            now = str(step.after.tcb(side).state)
            if now != states[side]:
                rows.append(Exchange("state", side, now))
                states[side] = now
    return rows


def mermaid(steps: Sequence[Step], title: str = "") -> str:
    """The counterexample as a Mermaid sequenceDiagram (renders on GitHub)."""
    lines = ["sequenceDiagram"]
    if title:
        lines.append(f"    title {title}")
    lines += ["    participant C as client", "    participant S as server"]
    letter = {Side.CLIENT: "C", Side.SERVER: "S"}
    for row in exchanges(steps):
        here = letter[row.side]
        if row.kind != "segment":
            lines.append(f"    Note over {here}: {row.text}")
        elif row.lost:
            lines.append(f"    {here}-x{letter[row.side.peer]}: {row.text} (lost)")
        else:
            dup = " (duplicated)" if row.duplicated else ""
            lines.append(f"    {here}->>{letter[row.side.peer]}: {row.text}{dup}")
    return "\n".join(lines) + "\n"


def reproduces(system: System, prop: Property, actions: Sequence[Action]) -> str | None:
    """Replay `actions` and re-decide `prop` where the path ends.

    Returns the violation message if the replayed path violates the
    property at its end (state invariants on the last state, transition
    properties on the last step, a sink's check (deadlock) on the last
    state if it is a sink, a graph check (liveness) on the graph explored
    from it, violated if the last state is),
    else None.  Raises ReplayError if a step does not fit the system.
    """
    steps = run(system, actions)
    last = steps[-1].after if steps else system.initial
    if prop.check_state is not None:
        return prop.check_state(system, last)
    if prop.check_transition is not None:
        if not steps:
            return None
        step = steps[-1]
        return prop.check_transition(system, step.before, step.info, step.after)
    if prop.check_end is not None:
        return prop.check_end(system, last) if not enabled(system, last) else None
    if prop.check_graph is None:
        return None
    # The graph from where the path ends: violated there if its first state is.
    sub = explore(replace(system, initial=last, memo={}), (prop,))
    violation = sub.violations.get(prop.name)
    if violation is not None and violation.node == 0:
        return f"from where the replayed path ends: {violation.message}"
    return None
