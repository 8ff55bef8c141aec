"""State and transition counts per default scenario, pinned.

A change to the model, the network or the scripts that moves one of these
numbers must be deliberate: update the table in the same commit and say why.
(rfc9293 profile, each scenario's default network, quiet timers.)
"""

from __future__ import annotations

import pytest

from synack.model.scenarios import DEFAULT_SCENARIOS

from .explored import explored

PINNED = {
    # scenario: (states, transitions, depth)
    "handshake": (302, 721, 14),
    "lifecycle": (75777, 335122, 36),
    "half-close": (26875, 123235, 33),
    "simultaneous-open": (1387, 4206, 17),
    "simultaneous-close": (11371, 41830, 28),
    "reconnect": (20203, 88045, 34),
    "abort": (2074, 8226, 18),
    "refused": (31, 59, 9),
    "syn-loss": (242, 467, 25),
}


def test_every_default_scenario_is_pinned() -> None:
    assert set(PINNED) == set(DEFAULT_SCENARIOS)


@pytest.mark.parametrize("scenario", sorted(PINNED))
def test_pinned_counts(scenario: str) -> None:
    result = explored(scenario)
    assert (result.states, result.transitions, result.depth) == PINNED[scenario]
