"""Inductive proofs and bounded model checking of the one-endpoint system.

`prove_local` checks, each in its own solver: the clauses hold in the
initial state; every action preserves every clause (a failure names the
action and the clause, with the counterexample to induction); every
action stays inside the encoding's domain; and the clauses imply the
property for every action.  `bmc_local` searches for a concrete run from
CLOSED that violates the property, and returns its events so that the
Python model can replay it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import z3

from synack.model import (
    AbortCall,
    CloseCall,
    Config,
    Event,
    Flags,
    OpenCall,
    ReceiveCall,
    Segment,
    SegmentArrives,
    SendCall,
    Timeout,
)

from .invariants import Clause, holds
from .z3local import (
    ACTIONS,
    LocalAction,
    LocalStep,
    TransitionProperty,
    build_step,
    fresh_state,
    initial,
)
from .z3tcb import SymSeg, tcb_view, value_of

BMC_MAX_TEXT = 8


@dataclass
class InductionResult:
    proved: bool
    failure: str = ""
    checks: int = 0
    timed_out: bool = False


def prove_local(
    cfg: Config,
    clauses: tuple[Clause, ...],
    props: dict[str, TransitionProperty],
    deadline: float,
) -> tuple[InductionResult, dict[str, InductionResult]]:
    """Check that `clauses` are inductive, then that they imply each property.

    Returns the result for the clauses themselves and one per property (a
    property is proved only if the clauses are, and it follows from them).
    """
    checks = 0
    pre = fresh_state("pre")
    init_solver = z3.Solver()
    init_solver.add(initial(pre))
    for clause in clauses:
        checks += 1
        if init_solver.check(z3.Not(clause.formula(cfg, pre))) == z3.sat:
            failed = InductionResult(False, f"clause {clause.name} fails in the initial state")
            return failed, {}
    verdicts: dict[str, InductionResult] = {name: InductionResult(True) for name in props}
    for action in ACTIONS:
        s = build_step(cfg, pre, action, "in")
        solver = z3.SolverFor("QF_BV")
        solver.add(holds(cfg, clauses, pre), s.assumptions)
        goals: list[tuple[str, str | None, z3.BoolRef]] = [
            ("the encoding's domain", None, s.result.domain)
        ]
        goals += [(f"clause {c.name}", None, c.formula(cfg, s.post)) for c in clauses]
        goals += [(f"property {n}", n, p(cfg, s)) for n, p in props.items()]
        remaining = deadline - time.monotonic()
        solver.set("timeout", max(1, int(remaining * 1000)))
        checks += 1
        if solver.check(z3.Not(z3.And(*[g for _, _, g in goals]))) == z3.unsat:
            continue
        for what, prop_name, goal in goals:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return InductionResult(False, "timeout", checks, timed_out=True), {}
            solver.set("timeout", max(1, int(remaining * 1000)))
            checks += 1
            answer = solver.check(z3.Not(goal))
            if answer == z3.unknown:
                reason = f"{what} under {action.name}: {solver.reason_unknown()}"
                return InductionResult(False, reason, checks, timed_out=True), {}
            if answer == z3.sat:
                cti = describe_state(s, solver.model())
                failure = f"{action.name} does not preserve {what}; from {cti}"
                if prop_name is None:
                    return InductionResult(False, failure, checks), {}
                if verdicts[prop_name].proved:
                    verdicts[prop_name] = InductionResult(False, failure, checks)
    return InductionResult(True, checks=checks), verdicts


def describe_state(s: LocalStep, model: z3.ModelRef) -> str:
    def ev(e: z3.ExprRef) -> z3.ExprRef:
        return model.eval(e, model_completion=True)

    view = tcb_view(s.pre.tcb, ev)
    shown = {k: v for k, v in view.items() if v not in (0, False)}
    text = f"pre-state {shown}"
    if s.segment is not None:
        text += f" with segment {concrete_segment(s.segment, ev)}"
    return text


# ------------------------------------------------------------------ BMC


@dataclass
class Trace:
    """A concrete run of the one-endpoint system: the events, and for each the value
    the ISN generator produces next (used by OPEN and by a SYN reaching LISTEN)."""

    events: list[Event] = field(default_factory=list)
    isns: list[int] = field(default_factory=list)


def concrete_segment(seg: SymSeg, ev: object) -> Segment:
    def val(e: z3.ExprRef) -> int | bool:
        return value_of(e, ev)  # type: ignore[arg-type]

    flags = Flags(0)
    for name, flag in (
        ("syn", Flags.SYN),
        ("ack_bit", Flags.ACK),
        ("fin", Flags.FIN),
        ("rst", Flags.RST),
        ("psh", Flags.PSH),
        ("urg", Flags.URG),
    ):
        if val(getattr(seg, name)):
            flags |= flag
    length = int(val(seg.length))
    return Segment(
        flags,
        int(val(seg.seq)),
        int(val(seg.ack)),
        int(val(seg.wnd)),
        b"x" * length,
        int(val(seg.up)),
    )


def _concrete_event(step: LocalStep, model: z3.ModelRef) -> tuple[Event, int | None]:
    def ev(e: z3.ExprRef) -> z3.ExprRef:
        return model.eval(e, model_completion=True)

    action = step.action
    iss = None if step.new_iss is None else int(value_of(step.new_iss, ev))
    if action.event is OpenCall:
        return OpenCall(active=action.active, iss=iss if action.active else None), iss
    if action.event is SendCall:
        assert step.length is not None
        return SendCall(b"d" * int(value_of(step.length, ev))), None
    if action.event is SegmentArrives:
        assert step.segment is not None
        return SegmentArrives(concrete_segment(step.segment, ev)), iss
    if action.event is Timeout:
        assert action.timer is not None
        return Timeout(action.timer), None
    calls: dict[type, Event] = {
        ReceiveCall: ReceiveCall(),
        CloseCall: CloseCall(),
        AbortCall: AbortCall(),
    }
    return calls[action.event], None


def bmc_local(
    cfg: Config, prop: TransitionProperty, max_depth: int, deadline: float
) -> Trace | str | None:
    """The shortest run (up to `max_depth` actions) violating `prop`; None; or why unknown."""
    state = fresh_state("s0")
    solver = z3.Solver()
    solver.add(initial(state))
    chosen: list[list[tuple[z3.BoolRef, LocalStep]]] = []
    for depth in range(max_depth):
        options: list[tuple[z3.BoolRef, LocalStep]] = []
        for i, action in enumerate(ACTIONS):
            steps = build_step(cfg, state, action, f"d{depth}a{i}", max_text=BMC_MAX_TEXT)
            options.append((z3.Bool(f"d{depth}.take{i}"), steps))
        solver.add(z3.PbEq([(flag, 1) for flag, _ in options], 1))
        nxt = fresh_state(f"s{depth + 1}")
        for flag, s in options:
            same = [
                getattr(nxt.tcb, n) == getattr(s.post.tcb, n)
                for n in s.post.tcb.__dataclass_fields__
            ]
            same += [
                nxt.syn_tx == s.post.syn_tx,
                nxt.synack_tx == s.post.synack_tx,
                nxt.fin_tx == s.post.fin_tx,
            ]
            solver.add(z3.Implies(flag, z3.And(s.assumptions, s.result.domain, *same)))
        chosen.append(options)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"timeout in the counterexample search at {depth + 1} events"
        solver.set("timeout", max(1, int(remaining * 1000)))
        bad = z3.Or(*[z3.And(flag, z3.Not(prop(cfg, s))) for flag, s in options])
        answer = solver.check(bad)
        if answer == z3.unknown:
            why = solver.reason_unknown()
            why = "timeout" if why == "canceled" else why
            return f"{why} in the counterexample search at {depth + 1} events"
        if answer == z3.sat:
            model = solver.model()
            trace = Trace()
            for options_at in chosen:
                for flag, s in options_at:
                    if z3.is_true(model.eval(flag, model_completion=True)):
                        event, iss = _concrete_event(s, model)
                        trace.events.append(event)
                        trace.isns.append(0 if iss is None else iss)
            return trace
        state = nxt
    return None


def action_named(name: str) -> LocalAction:
    return next(a for a in ACTIONS if a.name == name)
