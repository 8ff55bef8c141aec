"""Bring your own stack: the smallest Python targets (docs/howto-own-stack.md).

`make` is a correct stack (here: the specification itself, standing in for
yours); `drops_resets` is the same stack with a seeded bug, it never sends
a RST, which `synack fuzz --target python:tests.own_stack:drops_resets`
must catch.
"""

from __future__ import annotations

from dataclasses import dataclass

from synack.harness.fuzz.targets.base import Observation, Target
from synack.harness.fuzz.targets.model import ModelTarget, fuzz_config
from synack.model.config import Profile


def make(profile: Profile) -> Target:
    return ModelTarget(fuzz_config(profile), name="own-stack")


@dataclass
class DropsResets(ModelTarget):
    """A stack whose RST replies get lost on the way out."""

    def collect(self, expect: int) -> Observation:
        seen = super().collect(expect)
        kept = tuple(s for s in seen.segments if not s.rst)
        return Observation(segments=kept, user=seen.user)


def drops_resets(profile: Profile) -> Target:
    return DropsResets(fuzz_config(profile), name="own-stack-drops-resets")
