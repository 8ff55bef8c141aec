"""Explorations shared by the property tests: each system is explored once per run."""

from __future__ import annotations

from functools import cache

from synack.harness.check.explore import Exploration, explore
from synack.model.config import Profile, Variant
from synack.model.scenarios import get


@cache
def explored(
    scenario: str, profile: Profile = Profile.RFC9293, variant: Variant | None = None
) -> Exploration:
    return explore(get(scenario).build(profile, variant))
