"""The two-endpoint claims: proved by induction, refuted by a replayed run, or unknown.

`prove_pair_core` discharges, one obligation per (action, goal), that
the clauses of `invariants.PAIR_CORE` and `invariants.SEGMENT_CLAUSES`
hold initially and are kept by every action of `z3pair.PAIR_ACTIONS`;
`prove_pair_claim` that they imply a claim.  `bmc_pair` searches for a short run from both
CLOSED in which every delivered segment is one sent earlier; `replay_pair`
runs it through `model.step` for both endpoints, tagging each sent
segment with its sender's ISS and IRS as the ghost tags do, and decides
the claim again in Python.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import z3

from synack.harness.prove.induction import (
    SOLVER_TACTIC,
    Answer,
    InductionResult,
    Obligation,
    Task,
    Workers,
    concrete_segment,
    first_false,
    prove_obligations,
    shown_tcb,
)
from synack.harness.prove.invariants import (
    PAIR_CLAUSES,
    PAIR_CORE,
    SEGMENT_CLAUSES,
    SEGMENT_CLAUSES_BY_NAME,
    pair_holds,
    segment_holds,
)
from synack.harness.prove.relation import event_label, shown_output
from synack.harness.prove.z3pair import (
    PAIR_ACTIONS,
    PAIR_PROPERTIES,
    NetSeg,
    PairAction,
    PairProperty,
    PairState,
    PairStep,
    build_pair_step,
    fresh_netseg,
    fresh_pair,
    initial_pair,
)
from synack.harness.prove.z3tcb import SEG_FIELDS, value_of
from synack.model import (
    SYNCHRONIZED,
    Config,
    Emit,
    Event,
    OpenCall,
    Segment,
    SegmentArrives,
    State,
    Tcb,
    Variant,
    closed,
    step,
)
from synack.properties.catalogue import Property
from synack.properties.catalogue import get as catalogue_property

S = State
PAIR_DEPTH = 7
SEARCH_ACTIONS = tuple(a for a in PAIR_ACTIONS if a.local.timer is None)
"""The counterexample search leaves the timeouts out (OPEN, ABORT and deliveries are
what establishment needs); it only ever refutes, and every run it finds is replayed."""
BMC_TACTIC = ("simplify", "propagate-values", "solve-eqs", "card2bv", "bit-blast", "sat")


PAIR_ASSUMED = (*PAIR_CLAUSES, *SEGMENT_CLAUSES_BY_NAME)
"""Every two-endpoint clause: what each obligation assumes of the pre-state."""


def pair_action_named(name: str) -> PairAction:
    return next(a for a in PAIR_ACTIONS if a.name == name)


# ------------------------------------------------------------ induction


def _goal(cfg: Config, s: PairStep, any_seg: NetSeg, ob: Obligation) -> z3.BoolRef:
    if ob.kind == "domain":
        return s.result.domain
    if ob.kind == "clause":
        return PAIR_CLAUSES[ob.goal].formula(s.post)
    if ob.kind == "segment":
        return SEGMENT_CLAUSES_BY_NAME[ob.goal].formula(s.post, any_seg)
    if ob.kind == "sent":
        clause = SEGMENT_CLAUSES_BY_NAME[ob.goal]
        return z3.And(True, *[z3.Implies(g, clause.formula(s.post, n)) for g, n in s.sent])
    return PAIR_PROPERTIES[ob.goal](cfg, s)


def pair_query(task: Task) -> tuple[PairStep, NetSeg, list[z3.BoolRef]]:
    """The step of `task`'s action from a symbolic pre-state, an arbitrary segment of
    the network, and what the obligation assumes: the assumed clauses of the
    pre-state and of both segments, the environment's assumptions, a fresh ISS."""
    pre, any_seg = fresh_pair("pre"), fresh_netseg("any")
    s = build_pair_step(task.cfg, pre, pair_action_named(task.obligation.action), "in")
    known: list[tuple[z3.BoolRef, NetSeg]] = [(z3.BoolVal(True), any_seg)]
    assumed = task.assumed
    hypotheses = [pair_holds(pre, assumed), segment_holds(pre, any_seg, assumed), s.assumptions]
    if s.delivered is not None:
        known.append((z3.BoolVal(True), s.delivered))
        hypotheses.append(segment_holds(pre, s.delivered, assumed))
    hypotheses.append(s.fresh(known))
    return s, any_seg, hypotheses


def discharge_pair(task: Task) -> Answer:
    """Decide one two-endpoint obligation (in a worker process, or in this one)."""
    ob = task.obligation
    remaining = task.deadline - time.time()
    if remaining <= 0:
        return Answer(ob, "unknown", "timeout")
    s, any_seg, hypotheses = pair_query(task)
    solver = z3.Then(*SOLVER_TACTIC).solver()
    solver.set("timeout", max(1, int(remaining * 1000)))
    solver.add(*hypotheses, z3.Not(_goal(task.cfg, s, any_seg, ob)))
    answer = solver.check()
    if answer == z3.unsat:
        return Answer(ob, "holds")
    if answer == z3.sat:
        return Answer(ob, "fails", describe_pair(s, any_seg, solver.model()))
    why = solver.reason_unknown()
    return Answer(ob, "unknown", "timeout" if why in ("timeout", "canceled") else why)


def describe_pair(s: PairStep, any_seg: NetSeg, model: z3.ModelRef) -> str:
    def ev(e: z3.ExprRef) -> z3.ExprRef:
        return model.eval(e, model_completion=True)

    def seg(n: NetSeg) -> str:
        tags = {
            "from_client": value_of(n.from_client, ev),
            "g_iss": value_of(n.g_iss, ev),
            "g_irs": value_of(n.g_irs, ev),
            "g_hasirs": value_of(n.g_hasirs, ev),
            "g_born": value_of(n.g_born, ev),
        }
        return f"{concrete_segment(n.seg, ev)} {tags}"

    clocks = {k: value_of(getattr(s.pre, k), ev) for k in ("c_born", "s_born", "clock")}
    text = f"client {shown_tcb(s.pre.client, ev)}, server {shown_tcb(s.pre.server, ev)}, {clocks}"
    if s.delivered is not None:
        text += f"; delivered {seg(s.delivered)}"
    return text + f"; some segment of the network {seg(any_seg)}"


def pair_initially_false() -> str | None:
    state = fresh_pair("init")
    return first_false(initial_pair(state), [(c.name, c.formula(state)) for c in PAIR_CORE])


def prove_pair_core(cfg: Config, deadline: float, workers: Workers) -> InductionResult:
    """The two-endpoint clauses hold initially and every action keeps them (and its domain)."""
    started = time.monotonic()
    failed = pair_initially_false()
    if failed is not None:
        return InductionResult(False, f"clause {failed} fails in the initial state")
    obligations = []
    for a in PAIR_ACTIONS:
        obligations.append(Obligation(a.name, "domain", ""))
        obligations += [Obligation(a.name, "clause", c.name) for c in PAIR_CORE]
        for c in SEGMENT_CLAUSES:
            obligations.append(Obligation(a.name, "segment", c.name))  # one already sent
            obligations.append(Obligation(a.name, "sent", c.name))  # the ones it sends
    result = prove_obligations(cfg, PAIR_ASSUMED, obligations, deadline, workers, discharge_pair)
    result.seconds = time.monotonic() - started
    return result


def prove_pair_claim(cfg: Config, claim: str, deadline: float, workers: Workers) -> InductionResult:
    """Given the two-endpoint clauses, every action satisfies `claim`."""
    obligations = [Obligation(a.name, "property", claim) for a in PAIR_ACTIONS]
    return prove_obligations(cfg, PAIR_ASSUMED, obligations, deadline, workers, discharge_pair)


# ------------------------------------------------------------------ BMC


@dataclass
class PairTrace:
    """A run of the two-endpoint system: per step the side, the event, and what the
    ISN generator yields next."""

    steps: list[tuple[bool, Event, int]] = field(default_factory=list)


def _same(a: NetSeg, b: NetSeg) -> z3.BoolRef:
    fields_equal = [getattr(a.seg, n) == getattr(b.seg, n) for n in SEG_FIELDS]
    tags = [
        a.from_client == b.from_client,
        a.g_iss == b.g_iss,
        a.g_irs == b.g_irs,
        a.g_hasirs == b.g_hasirs,
        a.g_born == b.g_born,
    ]
    return z3.And(*fields_equal, *tags)


def _same_state(a: PairState, b: PairState) -> z3.BoolRef:
    same = [
        getattr(x, n) == getattr(y, n)
        for x, y in ((a.client, b.client), (a.server, b.server))
        for n in x.__dataclass_fields__
    ]
    same += [a.c_born == b.c_born, a.s_born == b.s_born, a.clock == b.clock]
    return z3.And(*same)


def bmc_pair(
    cfg: Config, prop: PairProperty, max_depth: int, deadline: float
) -> PairTrace | str | None:
    """A run of up to `max_depth` steps violating `prop`; None; or why unknown."""
    state = fresh_pair("s0")
    solver = z3.Then(*BMC_TACTIC).solver()
    solver.add(initial_pair(state))
    network: list[tuple[z3.BoolRef, NetSeg]] = []
    chosen: list[list[tuple[z3.BoolRef, PairStep]]] = []
    bad: list[z3.BoolRef] = []
    chosen_iss: list[tuple[z3.BoolRef, z3.BitVecRef]] = []
    pending: list[tuple[z3.BoolRef, z3.BitVecRef]] = []
    for depth in range(max_depth):
        options: list[tuple[z3.BoolRef, PairStep]] = []
        nxt = fresh_pair(f"s{depth + 1}")
        for i, action in enumerate(SEARCH_ACTIONS):
            s = build_pair_step(cfg, state, action, f"d{depth}a{i}")
            flag = z3.Bool(f"d{depth}.take{i}")
            facts = [s.assumptions, s.result.domain, _same_state(nxt, s.post)]
            if s.new_iss is not None:
                # Every ISS and IRS in use comes from an ISS chosen earlier in the run, so
                # "differs from every earlier choice" implies the proofs' freshness.
                facts += [z3.Implies(g, s.new_iss != earlier) for g, earlier in chosen_iss]
                pending.append((flag, s.new_iss))
            if s.delivered is not None:
                d = s.delivered
                # Only what the other side sent can arrive (`from_client` is a constant).
                theirs = [(g, n) for g, n in network if z3.is_true(n.from_client) != action.client]
                facts.append(z3.Or(False, *[z3.And(g, _same(d, n)) for g, n in theirs]))
            solver.add(z3.Implies(flag, z3.And(*facts)))
            options.append((flag, s))
        solver.add(z3.PbEq([(flag, 1) for flag, _ in options], 1))
        chosen_iss += pending
        pending = []
        for flag, s in options:
            network += [(z3.And(flag, g), n) for g, n in s.sent]
        chosen.append(options)
        bad.append(z3.Or(*[z3.And(flag, z3.Not(prop(cfg, s))) for flag, s in options]))
        state = nxt
    # One query for every depth at once: a bit-blasting solver does not reuse work
    # between queries, and the replay stops at the first violating step anyway.
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return "timeout while building the counterexample search"
    solver.set("timeout", max(1, int(remaining * 1000)))
    answer = solver.check(z3.Or(*bad))
    if answer == z3.unknown:
        why = solver.reason_unknown()
        why = "timeout" if why == "canceled" else why
        return f"{why} in the counterexample search (up to {max_depth} steps)"
    if answer == z3.sat:
        return _trace(solver.model(), chosen)
    return None


def _trace(model: z3.ModelRef, chosen: list[list[tuple[z3.BoolRef, PairStep]]]) -> PairTrace:
    def ev(e: z3.ExprRef) -> z3.ExprRef:
        return model.eval(e, model_completion=True)

    trace = PairTrace()
    for options in chosen:
        for flag, s in options:
            if not z3.is_true(ev(flag)):
                continue
            iss = 0 if s.new_iss is None else int(value_of(s.new_iss, ev))
            local = s.action.local
            event: Event
            if local.event is SegmentArrives:
                assert s.delivered is not None
                event = SegmentArrives(concrete_segment(s.delivered.seg, ev))
            elif local.event is OpenCall:
                event = OpenCall(active=local.active, iss=iss if local.active else None)
            elif local.timer is not None:
                event = local.event(local.timer)
            else:
                event = local.event()
            trace.steps.append((s.action.client, event, iss))
    return trace


# --------------------------------------------------------------- replay


@dataclass(frozen=True)
class Tags:
    """The ghost tags of a sent segment, computed from the sender's TCB."""

    from_client: bool
    g_iss: int
    g_irs: int
    g_hasirs: bool


def _has_irs(t: Tcb) -> bool:
    return t.state not in (S.CLOSED, S.LISTEN, S.SYN_SENT)


ConcretePairCheck = Callable[[bool, Tcb, Tcb, Tags | None, Tcb, Tcb], str | None]


def _synchronizes_on_current_syn(
    client: bool, before: Tcb, after: Tcb, tags: Tags | None, c: Tcb, s: Tcb
) -> str | None:
    if before.state in SYNCHRONIZED or after.state not in SYNCHRONIZED:
        return None
    side = "client" if client else "server"
    if tags is None:
        return f"{side} became {after.state} without a segment"
    if tags.g_hasirs and tags.g_iss == after.irs and tags.g_irs == after.iss:
        return None
    peer = "client" if tags.from_client else "server"
    took = f"IRS {tags.g_irs}" if tags.g_hasirs else "no IRS (it had taken no SYN)"
    return (
        f"{side} became {after.state} (ISS {after.iss}, IRS {after.irs}) on a segment of a "
        f"{peer} incarnation with ISS {tags.g_iss} and {took}"
    )


def _sequences_agree(
    client: bool, before: Tcb, after: Tcb, tags: Tags | None, c: Tcb, s: Tcb
) -> str | None:
    if c.state is not S.ESTABLISHED or s.state is not S.ESTABLISHED:
        return None
    if c.irs == s.iss and s.irs == c.iss and c.snd_nxt == s.rcv_nxt and s.snd_nxt == c.rcv_nxt:
        return None
    return (
        f"both ESTABLISHED but they disagree: client ISS {c.iss} IRS {c.irs}, "
        f"server ISS {s.iss} IRS {s.irs}"
    )


@dataclass
class PairReplayed:
    reproduced: bool
    explanation: str
    lines: list[str]


def replay_pair(cfg: Config, check: ConcretePairCheck, trace: PairTrace) -> PairReplayed:
    """Run `trace` through `model.step` for both endpoints and decide the claim again."""
    tcbs = {True: closed(cfg), False: closed(cfg)}
    network: list[tuple[Segment, Tags]] = []
    lines: list[str] = []
    for n, (client, event, iss) in enumerate(trace.steps, 1):
        side = "client" if client else "server"
        tags = None
        if isinstance(event, SegmentArrives):
            match = [t for seg, t in network if seg == event.segment and t.from_client != client]
            if not match:
                missing = f"step {n} delivers {event.segment}, which was never sent"
                return PairReplayed(False, missing, lines)
            tags = match[0]
        before = replace(tcbs[client], iss_pool=(iss,))
        after, outputs = step(before, event)
        tcbs[client] = after
        for o in outputs:
            if isinstance(o, Emit):
                network.append((o.segment, Tags(client, after.iss, after.irs, _has_irs(after))))
        label = event_label(event)
        shown = ", ".join(x for x in map(shown_output, outputs) if x) or "-"
        lines.append(f"{n}. {side} {before.state} --{label}--> {after.state}  [{shown}]")
        why = check(client, before, after, tags, tcbs[True], tcbs[False])
        if why is not None:
            return PairReplayed(True, why, lines)
    return PairReplayed(False, "the Python model satisfies the claim on this run", lines)


# ---------------------------------------------------------------- claims


@dataclass(frozen=True)
class PairClaim:
    name: str
    meaning: str
    source: str
    catalogue: Property  # the catalogue's property this claim is a part of
    broken_by: tuple[Variant, ...]
    concrete: ConcretePairCheck

    @property
    def formula(self) -> PairProperty:
        return PAIR_PROPERTIES[self.name]


PAIR_CLAIMS: tuple[PairClaim, ...] = (
    PairClaim(
        "no-old-syn-connection",
        "an endpoint becomes synchronized only on a segment of the peer incarnation whose "
        "ISS is its IRS and whose IRS is its ISS: never on an old duplicate SYN",
        "RFC 9293 3.5 (Figures 8, 9); 3.10.7.3, 3.10.7.4 fifth step",
        catalogue_property("no-old-syn-connection"),
        (Variant.TWO_WAY_HANDSHAKE, Variant.UNCHECKED_SYNACK),
        _synchronizes_on_current_syn,
    ),
    PairClaim(
        "sequence-agreement",
        "when both are ESTABLISHED, each side's IRS is the other's ISS, and SND.NXT and "
        "RCV.NXT match",
        "RFC 9293 3.4, 3.5",
        catalogue_property("no-old-syn-connection"),
        # two-way-handshake breaks it too (7 steps: the server aborts, and a duplicate
        # of the SYN it had taken re-establishes it), but the search takes 10-130 s
        # for that run depending on the solver's luck; the tests refute
        # two-way-handshake through no-old-syn-connection instead (3 steps).
        (Variant.UNCHECKED_SYNACK,),
        _sequences_agree,
    ),
)

BY_NAME = {c.name: c for c in PAIR_CLAIMS}


@dataclass
class PairResult:
    claim: PairClaim
    verdict: str
    seconds: float
    reason: str = ""
    chart: list[str] | None = None
    steps: list[str] | None = None


def check_pair_claim(
    claim: PairClaim,
    cfg: Config,
    budget: float,
    workers: Workers | None = None,
    core: InductionResult | None = None,
    max_depth: int = PAIR_DEPTH,
) -> PairResult:
    """Prove by induction over the two-endpoint clauses (`core`, computed here if not
    given); otherwise search for a run and replay it in the model."""
    started = time.monotonic()
    deadline = started + budget
    workers = workers or Workers(processes=0)
    if core is None:
        core = prove_pair_core(cfg, deadline, workers)
    if core.proved:
        attempt = prove_pair_claim(cfg, claim.name, deadline, workers)
        if attempt.proved:
            return PairResult(claim, "proved", time.monotonic() - started)
        why = attempt.failure
    else:
        why = "two-endpoint invariants not proved: " + core.failure
    found = bmc_pair(cfg, claim.formula, max_depth, deadline)
    elapsed = time.monotonic() - started
    if isinstance(found, PairTrace):
        replayed = replay_pair(cfg, claim.concrete, found)
        steps = [f"{'client' if c else 'server'}: {e}" for c, e, _ in found.steps]
        if replayed.reproduced:
            return PairResult(
                claim, "refuted", elapsed, replayed.explanation, replayed.lines, steps
            )
        why = "spurious counterexample of the encoding: " + replayed.explanation
        return PairResult(claim, "unknown", elapsed, why, replayed.lines, steps)
    searched = found or f"no violation within {max_depth} steps"
    return PairResult(claim, "unknown", elapsed, f"{searched}; induction: {why}")
