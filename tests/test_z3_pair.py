"""The two-endpoint proofs: refutations that replay, obligations that are not vacuous,
clauses that are needed, and agreement with the explorer."""

from __future__ import annotations

import time

import pytest
import z3

from synack.harness.prove import relation, twoends
from synack.harness.prove.induction import Obligation, Task, Workers
from synack.harness.prove.z3pair import PAIR_ACTIONS, has_iss
from synack.harness.prove.z3tcb import is_state, synchronized
from synack.model import OpenCall, State, Variant

from .test_z3_relation import SLOW, explorer_violates, slow_except

SPEC = relation.PROOF_CONFIG


@pytest.mark.parametrize(
    "claim, variant",
    [
        (c, v)
        if (c.name, v) == ("no-old-syn-connection", Variant.TWO_WAY_HANDSHAKE)
        else pytest.param(c, v, marks=SLOW)
        for c in twoends.PAIR_CLAIMS
        for v in c.broken_by
    ],
    ids=lambda x: getattr(x, "name", None) or getattr(x, "value", str(x)),
)
def test_variant_is_refuted_by_a_run_that_replays(
    claim: twoends.PairClaim, variant: Variant
) -> None:
    assert explorer_violates(claim.catalogue.name, variant)  # the explorer agrees
    cfg = SPEC.with_(variant=variant)
    found = twoends.bmc_pair(cfg, claim.formula, twoends.PAIR_DEPTH, time.monotonic() + 300)
    assert isinstance(found, twoends.PairTrace), found
    replayed = twoends.replay_pair(cfg, claim.concrete, found)
    assert replayed.reproduced, replayed.lines
    # Every delivery in the run is of a segment sent earlier in it, and the
    # specification survives the same events.
    assert not any("never sent" in line for line in replayed.lines)
    assert not twoends.replay_pair(SPEC, claim.concrete, found).reproduced


def test_a_delivery_of_a_segment_never_sent_is_not_a_counterexample() -> None:
    claim = twoends.BY_NAME["no-old-syn-connection"]
    cfg = SPEC.with_(variant=Variant.TWO_WAY_HANDSHAKE)
    found = twoends.bmc_pair(cfg, claim.formula, 3, time.monotonic() + 120)
    assert isinstance(found, twoends.PairTrace)
    # The same run without the client's OPEN: its SYN was never sent.
    forged = twoends.PairTrace(
        [st for st in found.steps if not (st[0] and isinstance(st[1], OpenCall))]
    )
    replayed = twoends.replay_pair(cfg, claim.concrete, forged)
    assert not replayed.reproduced and "never sent" in replayed.explanation


def _task(action: str, kind: str, goal: str, assumed: tuple[str, ...]) -> Task:
    return Task(SPEC, assumed, Obligation(action, kind, goal), time.time() + 120)


@pytest.mark.parametrize("action", [a.name for a in PAIR_ACTIONS])
def test_every_obligation_assumes_something_satisfiable(action: str) -> None:
    """A contradiction among the clauses would prove anything; there is none."""
    s, _, hypotheses = twoends.pair_query(_task(action, "domain", "", twoends.PAIR_ASSUMED))
    solver = z3.Solver()
    solver.add(*hypotheses)
    # Not only some state: one where the acting side has a TCB.
    assert solver.check(has_iss(s.pre.side(s.action.client))) == z3.sat


def test_the_synchronizing_steps_are_possible_under_the_clauses() -> None:
    """The property obligations are not vacuous: each side can become synchronized."""
    for side in ("client", "server"):
        task = _task(f"{side} SEGMENT ARRIVES", "property", "", twoends.PAIR_ASSUMED)
        s, _, hypotheses = twoends.pair_query(task)
        b, a = s.pre.side(s.action.client), s.post.side(s.action.client)
        solver = z3.Solver()
        solver.add(*hypotheses, z3.Not(synchronized(b)), is_state(a.state, State.ESTABLISHED))
        assert solver.check() == z3.sat, side


def test_without_its_clause_the_server_synchronizes_on_an_old_incarnation() -> None:
    needed = "client-segment-synchronized-with-current-server"
    ob = ("server SEGMENT ARRIVES", "property", "no-old-syn-connection")
    full = twoends.discharge_pair(_task(*ob, twoends.PAIR_ASSUMED))
    assert full.status == "holds"
    weaker = tuple(n for n in twoends.PAIR_ASSUMED if n != needed)
    answer = twoends.discharge_pair(_task(*ob, weaker))
    assert answer.status == "fails" and "'state': <State.SYN_RECEIVED" in answer.detail


UNBROKEN = [v for v in Variant if not any(v in c.broken_by for c in twoends.PAIR_CLAIMS)]


@pytest.mark.parametrize(
    "variant", slow_except([None, *UNBROKEN], None), ids=lambda v: v.value if v else "spec"
)
def test_prover_and_explorer_agree_where_no_variant_breaks_the_claims(
    variant: Variant | None,
) -> None:
    """Where the explorer finds no-old-syn-connection intact, the prover proves both
    two-endpoint claims (the variants that break them: the refutation test above)."""
    assert not explorer_violates("no-old-syn-connection", variant)
    cfg = SPEC.with_(variant=variant)
    with Workers() as workers:
        core = twoends.prove_pair_core(cfg, time.monotonic() + 300, workers)
        assert core.proved, core.failure
        for claim in twoends.PAIR_CLAIMS:
            result = twoends.check_pair_claim(claim, cfg, 300, workers, core)
            assert result.verdict == "proved", result.reason
