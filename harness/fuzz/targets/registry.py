"""The targets by name: what `--target` accepts, and opening one.

`model` and `variant:NAME` run the executable specification in-process
(targets/model.py); `linux` is the kernel in a private network namespace
(targets/linux.py); lwip, gvisor and slirp are real stacks behind the agent
contract (targets/stacks.py, targets/agent.py); `python:MODULE:FACTORY` is a
user's own target (docs/howto-own-stack.md).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any, cast

from synack.model.config import Profile, Variant
from synack.model.segment import Segment

from .base import AppCall, Observation, Role, Target, TargetError, Traits
from .model import ModelTarget, fuzz_config
from .stacks import STACKS, agent_command

TARGET_KINDS = ("model", "variant:NAME", "linux", "python:MODULE:FACTORY", "agent:CMD")


def target_names() -> Iterator[tuple[str, str]]:
    yield "model", "the executable specification in-process (with --profile)"
    for variant in Variant:
        yield f"variant:{variant.value}", f"the broken design: {variant.description}"
    yield "linux", "the Linux kernel's TCP in a private network namespace, through a TUN device"
    for stack in STACKS.values():
        yield stack.name, f"{stack.title} (its agent is built on first use)"
    yield "python:MODULE:FACTORY", "your own stack: FACTORY() in MODULE returns a Target"
    yield 'agent:"CMD ARGS"', "your own stack in another process, behind the agent contract"


def parse_target(spec: str, profile: Profile) -> str:
    """Check a --target value; returns it normalised or raises ValueError."""
    if spec == "model" or spec == "linux":
        return spec
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
        from synack.harness.fuzz.targets.agent import AgentTarget

        return AgentTarget(spec[len("agent:") :])
    if spec in STACKS:
        from synack.harness.fuzz.targets.agent import AgentTarget

        return AgentTarget(agent_command(spec))
    from synack.harness.fuzz.targets.linux import LinuxTarget

    return LinuxTarget()
