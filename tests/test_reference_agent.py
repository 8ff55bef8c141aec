"""The reference agent (the specification behind the agent contract) runs clean.

The oracle learns a real stack's receive window from what it advertises.
When the application reads and the stack says nothing, RFC 9293 3.8.6.2.2
leaves two views open: the right edge stays where it was last advertised
(SWS avoidance; Linux) or the window reopens at once by what the read
freed (the model, hence the reference agent).  The oracle keeps both, so
the agent is clean at every window it accepts (1..65535: without window
scaling SEG.WND says no more).  The 300 s, five-seed form of this is in
docs/fuzzing.md.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from synack.harness.fuzz import findings
from synack.harness.fuzz.fuzz import Call, Example, Inject, Pick, allowed_variations, run_example
from synack.harness.fuzz.fuzzcmd import oracle_config
from synack.harness.fuzz.fuzzing import fuzz
from synack.harness.fuzz.targets.base import CallName, Role, Target, TargetError, Traits
from synack.harness.fuzz.targets.model import ModelTarget, fuzz_config
from synack.harness.fuzz.targets.registry import open_target, parse_target
from synack.model.config import Profile
from synack.model.segment import Flags

AGENT = f"agent:{sys.executable} -m synack.harness.fuzz.targets.model_agent"
SYN, ACK = int(Flags.SYN), int(Flags.ACK)
EXACT = Pick("exact")


def agent(*options: str) -> Target:
    spec = parse_target(" ".join((AGENT, *options)), Profile.RFC9293)
    return open_target(spec, Profile.RFC9293)


@pytest.fixture(params=[8, 1000, 65535], ids=lambda w: f"rcv_wnd={w}")
def reference(request: pytest.FixtureRequest) -> Iterator[Target]:
    target = agent("--rcv-wnd", str(request.param))
    yield target
    target.close()


READ_THEN_SYN = Example(
    Role.ACTIVE,
    0,
    0,
    (
        Inject(SYN | ACK, EXACT, EXACT, 1),
        Call(CallName.RECV),
        # At the edge the target last advertised, inside the window the read reopened.
        Inject(SYN, Pick("outside", 0), EXACT),
    ),
)


def test_a_read_reopens_the_window_and_the_oracle_allows_it(reference: Target) -> None:
    run = run_example(reference, READ_THEN_SYN, oracle_config(reference, Profile.RFC9293))
    assert run.divergence is None, findings.chart(run)
    # The SYN fell inside the window the read reopened: a reset, not the ACK of a SYN
    # outside it.
    assert [s.flags for s in run.steps[3].observed.segments] == [Flags.RST]
    assert not allowed_variations(run)  # both views are RFC 9293's, no allowance needed


def test_a_window_reopened_wider_than_the_read_freed_is_a_finding() -> None:
    """A stack with the agent's traits whose window is two octets wider than it can say
    resets for a SYN one beyond the reopened edge: a finding (the oracle allows the two
    views of the edge, not any edge)."""
    traits = Traits(False, False, False, False, False)
    cfg = fuzz_config(Profile.RFC9293).with_(rcv_wnd=0xFFFF, mss=536)
    beyond = Example(
        Role.ACTIVE, 0, 0, (*READ_THEN_SYN.actions[:2], Inject(SYN, Pick("outside", 1), EXACT))
    )
    wide = ModelTarget(cfg.with_(rcv_wnd=0xFFFF + 2), traits=traits)
    run = run_example(wide, beyond, cfg)
    assert run.divergence is not None, findings.chart(run)
    run = run_example(ModelTarget(cfg, traits=traits), beyond, cfg)
    assert run.divergence is None, findings.chart(run)


@pytest.mark.parametrize("window", ["70000", str(1 << 20), "0"])
def test_a_window_the_field_cannot_say_is_refused(window: str) -> None:
    with pytest.raises(TargetError, match=r"not in 1\.\.65535"):
        agent("--rcv-wnd", window).start(Role.PASSIVE, 0)


@pytest.mark.parametrize(("window", "seed"), [(65535, 1), (65535, 2), (8, 3)])
def test_reference_agent_campaign_is_clean(tmp_path: Path, window: int, seed: int) -> None:
    target = agent("--rcv-wnd", str(window))
    try:
        cfg = oracle_config(target, Profile.RFC9293)
        campaign = fuzz(target, cfg, 200, 60, seed, tmp_path / "db", f"reference-{window}")
    finally:
        target.close()
    shown = [findings.chart(f.run) for f in campaign.findings]
    assert not shown, "\n\n".join(shown)
    assert campaign.examples == 200 and not campaign.failure
