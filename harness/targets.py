"""What the fuzzer tests: one small interface, and the in-process targets.

A target is one TCP endpoint that the fuzzer talks to as its peer.  The
fuzzer starts it (`start`: a fresh connection context with a listen() or
connect()), then alternates one action with one `collect`:

- `inject(segment)`: a segment from the peer arrives at the target;
- `call(call)`: the target's application makes a socket call;
- `wait()`: time passes until the target's next timer would have fired;
- `collect(expect)`: what the target emitted since the last collect:
  segments, and what its application was told (replies, delivered text).

`model` and `variant:NAME` run the executable specification in-process;
`linux` (harness/linux.py) is the kernel in a private network namespace;
`python:MODULE:FACTORY` is a user's own target (docs/howto-own-stack.md).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, cast

from synack.model.config import Config, Profile, Variant
from synack.model.endpoint import step
from synack.model.segment import Segment
from synack.model.tcb import Tcb, closed
from synack.model.types import (
    AbortCall,
    CloseCall,
    Deliver,
    Emit,
    Event,
    OpenCall,
    Output,
    ReceiveCall,
    SegmentArrives,
    SendCall,
    Signal,
    Timeout,
    TimerKind,
)


class Role(Enum):
    """Which open the target's application makes."""

    PASSIVE = "passive"  # listen(); the fuzzer sends the SYN
    ACTIVE = "active"  # connect(); the target sends the SYN


class CallName(Enum):
    """The application calls the fuzzer makes on the target's side."""

    SEND = "send"
    RECV = "recv"
    SHUTDOWN = "shutdown"  # CLOSE: shutdown(SHUT_WR)
    ABORT = "abort"  # close() with SO_LINGER {on, 0}


@dataclass(frozen=True, slots=True)
class AppCall:
    name: CallName
    data: bytes = b""

    def __str__(self) -> str:
        return f"send({len(self.data)})" if self.name is CallName.SEND else f"{self.name.value}()"

    def event(self) -> Event:
        """The model's user call for this socket call."""
        if self.name is CallName.SEND:
            return SendCall(self.data)
        if self.name is CallName.RECV:
            return ReceiveCall()
        if self.name is CallName.SHUTDOWN:
            return CloseCall()
        return AbortCall()


UserOutput = Signal | Deliver


@dataclass(frozen=True, slots=True)
class Observation:
    """What a target did in response to one action."""

    segments: tuple[Segment, ...] = ()
    user: tuple[UserOutput, ...] = ()
    packets: tuple[tuple[float, bytes], ...] = ()  # raw IPv4, when the target has a wire
    anomalies: tuple[str, ...] = ()
    results: tuple[str, ...] = ()  # what the application's calls returned (errno, ...)


@dataclass(frozen=True, slots=True)
class Traits:
    """How far the oracle may compare a target's outputs with the model's."""

    exact_windows: bool  # SEG.WND is predicted (in-process) or learned from the target
    user_outputs: bool  # replies ("connection reset", ...) are observable and compared
    spontaneous_timers: bool  # a timer may fire during any action (real time passes)
    calls_in_any_state: bool  # application calls are meaningful before ESTABLISHED
    holds_out_of_order: bool  # text above RCV.NXT is queued (SHLD-31), not dropped
    slow_waits: bool = False  # `wait()` takes real time (seconds): generate waits rarely
    keeps_listener: bool = True  # listen() goes on after accept() (Config.listener_kept)
    congestion_control: bool = False  # a congestion window may hold new segments back
    # Config choices the target makes afresh for each arriving text segment,
    # invisibly to us: the oracle tries either value (Config.header_prediction).
    varies: tuple[str, ...] = ()


class Target(Protocol):
    name: str
    traits: Traits

    def start(self, role: Role, iss: int) -> None:
        """A fresh connection context; listen() or connect().  `iss` is a hint."""

    def inject(self, segment: Segment) -> None: ...

    def call(self, call: AppCall) -> None: ...

    def wait(self) -> None: ...

    def collect(self, expect: int) -> Observation:
        """Everything emitted since the last collect; waits boundedly for `expect` segments."""

    def close(self) -> None: ...


class TargetError(RuntimeError):
    """The target cannot be set up or stopped answering: one line for the user."""


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


FUZZ_RETRIES = {"syn_retries": 2, "synack_retries": 2, "retries": 3}
"""Retry limits shared by every target, small so that give-up is within reach."""


def fuzz_config(profile: Profile, variant: Variant | None = None) -> Config:
    """The model configuration the fuzzer runs in-process targets and the oracle with."""
    return Config(profile=profile, variant=variant, rcv_wnd=32, mss=8, **FUZZ_RETRIES)  # type: ignore[arg-type]


MODEL_TRAITS = Traits(
    exact_windows=True,
    user_outputs=True,
    spontaneous_timers=False,
    calls_in_any_state=True,
    holds_out_of_order=False,
)


@dataclass
class ModelTarget:
    """The executable specification itself (any profile, optionally a broken variant)."""

    cfg: Config
    name: str = "model"
    traits: Traits = MODEL_TRAITS
    tcb: Tcb = field(default_factory=closed)
    pending: list[Output] = field(default_factory=list)

    def _feed(self, event: Event) -> None:
        self.tcb, outputs = step(self.tcb, event)
        self.pending.extend(outputs)

    def start(self, role: Role, iss: int) -> None:
        pool = tuple((iss + k * 0x10000001) & 0xFFFFFFFF for k in range(4))
        self.tcb = closed(self.cfg, pool)
        self.pending = []
        self._feed(OpenCall(active=role is Role.ACTIVE))

    def inject(self, segment: Segment) -> None:
        self._feed(SegmentArrives(segment))

    def call(self, call: AppCall) -> None:
        self._feed(call.event())

    def wait(self) -> None:
        """The earliest timer fires: retransmission before user timeout before 2 MSL."""
        for kind in (TimerKind.RETRANSMISSION, TimerKind.USER, TimerKind.TIME_WAIT):
            if kind in self.tcb.timers:
                self._feed(Timeout(kind))
                return

    def collect(self, expect: int) -> Observation:
        outputs, self.pending = self.pending, []
        return Observation(
            segments=tuple(o.segment for o in outputs if isinstance(o, Emit)),
            user=tuple(o for o in outputs if isinstance(o, Signal | Deliver)),
        )

    def close(self) -> None:
        self.pending = []


TARGET_KINDS = ("model", "variant:NAME", "linux", "python:MODULE:FACTORY", "agent:CMD")


def target_names() -> Iterator[tuple[str, str]]:
    yield "model", "the executable specification in-process (with --profile)"
    for variant in Variant:
        yield f"variant:{variant.value}", f"the broken design: {variant.description}"
    yield "linux", "the Linux kernel's TCP in a private network namespace, through a TUN device"
    from .stacks import STACKS

    for stack in STACKS.values():
        yield stack.name, f"{stack.title} (its agent is built on first use)"
    yield "python:MODULE:FACTORY", "your own stack: FACTORY() in MODULE returns a Target"
    yield 'agent:"CMD ARGS"', "your own stack in another process, behind the agent contract"


def parse_target(spec: str, profile: Profile) -> str:
    """Check a --target value; returns it normalised or raises ValueError."""
    if spec == "model" or spec == "linux":
        return spec
    from .stacks import STACKS

    if spec in STACKS:
        return spec
    if spec.startswith("variant:"):
        name = spec.split(":", 1)[1]
        known = [v.value for v in Variant]
        if name not in known:
            raise ValueError(f"unknown variant {name!r} (known: {', '.join(known)})")
        return spec
    if spec.startswith("agent:"):
        if not spec[len("agent:") :].strip():
            raise ValueError('an agent target is agent:"CMD ARGS"')
        return spec
    if spec.startswith("python:"):
        parts = spec.split(":")
        if len(parts) != 3 or not all(parts[1:]):
            raise ValueError(f"{spec!r}: a Python target is python:MODULE:FACTORY")
        return spec
    raise ValueError(
        f"unknown target {spec!r} "
        "(known: model, variant:NAME, linux, lwip, gvisor, slirp, python:MODULE:FACTORY, "
        "agent:CMD)"
    )


def _python_target(spec: str, profile: Profile) -> Target:
    """`python:MODULE:FACTORY`: FACTORY(profile) (or FACTORY()) from MODULE, importable
    from the current directory, returns the target."""
    _, module_name, factory_name = spec.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise TargetError(f"{spec}: cannot import {module_name}: {exc}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise TargetError(f"{spec}: {module_name} has no callable {factory_name}")
    try:
        target = factory(profile)
    except Exception as exc:
        raise TargetError(f"{spec}: {factory_name}() failed: {exc}") from None
    missing = [
        m for m in ("start", "inject", "call", "wait", "collect", "close") if not hasattr(target, m)
    ]
    if missing or not isinstance(getattr(target, "traits", None), Traits):
        what = ", ".join(missing) or "traits"
        raise TargetError(f"{spec}: {factory_name}() returned no Target (missing {what})")
    return GuardedTarget(cast(Target, target))


class GuardedTarget:
    """A user's target whose exceptions become `TargetError`: one line, no traceback."""

    def __init__(self, inner: Target) -> None:
        self.inner = inner
        self.name = inner.name
        self.traits = inner.traits

    def _guard(self, method: str, *args: object) -> Any:
        try:
            return getattr(self.inner, method)(*args)
        except TargetError:
            raise
        except Exception as exc:
            raise TargetError(
                f"{self.name}: {method}() raised {type(exc).__name__}: {exc}"
            ) from None

    def start(self, role: Role, iss: int) -> None:
        self._guard("start", role, iss)

    def inject(self, segment: Segment) -> None:
        self._guard("inject", segment)

    def call(self, call: AppCall) -> None:
        self._guard("call", call)

    def wait(self) -> None:
        self._guard("wait")

    def collect(self, expect: int) -> Observation:
        seen = self._guard("collect", expect)
        if not isinstance(seen, Observation):
            raise TargetError(f"{self.name}: collect() returned {type(seen).__name__}")
        return seen

    def close(self) -> None:
        self._guard("close")


def open_target(spec: str, profile: Profile) -> Target:
    """Create the target named by `spec` (already checked by `parse_target`)."""
    if spec == "model":
        return ModelTarget(fuzz_config(profile), name="model")
    if spec.startswith("variant:"):
        variant = Variant(spec.split(":", 1)[1])
        # The variant is a broken design of the RFC text: the specification is its oracle.
        return ModelTarget(fuzz_config(Profile.RFC9293, variant), name=spec)
    if spec.startswith("python:"):
        return _python_target(spec, profile)
    if spec.startswith("agent:"):
        from .agent import AgentTarget

        return AgentTarget(spec[len("agent:") :])
    from .stacks import STACKS, agent_command

    if spec in STACKS:
        from .agent import AgentTarget

        return AgentTarget(agent_command(spec))
    from .linux import LinuxTarget  # imported lazily: only this target needs the kernel

    return LinuxTarget()
