"""Inductive proofs and bounded model checking of the one-endpoint system.

`prove_core` proves the endpoint invariants: they hold in the initial
state, every action preserves every clause (a failure names the action
and the clause, with the counterexample to induction) and stays inside
the encoding's domain.  `prove_claim` then proves a claim's own clauses
and that the clauses imply it for every action.  Each (action, goal) pair
is one obligation in its own solver, and the obligations are spread over
worker processes (`Workers`).  `bmc_local` searches for a concrete run from
CLOSED that violates the property, and returns its events so that the
Python model can replay it.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import z3

from synack.harness.prove.invariants import CLAUSES, EXTRA_CLAUSES, LOCAL_CORE, Clause, holds
from synack.harness.prove.z3local import (
    ACTIONS,
    LOCAL_PROPERTIES,
    LocalAction,
    LocalStep,
    TransitionProperty,
    build_step,
    fresh_state,
    initial,
)
from synack.harness.prove.z3tcb import SymSeg, SymTcb, tcb_view, value_of
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

BMC_MAX_TEXT = 8


SOLVER_TACTIC = ("simplify", "propagate-values", "solve-eqs", "bit-blast", "sat")
"""Bit-blasting after simplification: on the SEGMENT ARRIVES obligations about
twice as fast as z3's default QF_BV solver, which has to try its other tactics."""


@dataclass(frozen=True)
class Obligation:
    """One check: `action` from a state satisfying the assumed clauses keeps `goal`.

    `kind` is "domain" (the encoding's loop bound suffices), "clause" (a
    strengthening clause of `invariants.CLAUSES`) or "property" (a claim of
    `z3local.LOCAL_PROPERTIES`).
    """

    action: str
    kind: str
    goal: str

    def describe(self) -> str:
        what = "the encoding's domain" if self.kind == "domain" else f"{self.kind} {self.goal}"
        return f"{what} under {self.action}"


@dataclass(frozen=True)
class Task:
    cfg: Config
    assumed: tuple[str, ...]
    obligation: Obligation
    deadline: float  # time.time(), shared by the worker processes


@dataclass(frozen=True)
class Answer:
    obligation: Obligation
    status: str  # "holds" | "fails" | "unknown"
    detail: str = ""


def discharge(task: Task) -> Answer:
    """Decide one obligation (in a worker process, or in this one)."""
    ob = task.obligation
    remaining = task.deadline - time.time()
    if remaining <= 0:
        return Answer(ob, "unknown", "timeout")
    cfg = task.cfg
    clauses = tuple(CLAUSES[name] for name in task.assumed)
    pre = fresh_state("pre")
    s = build_step(cfg, pre, action_named(ob.action), "in")
    if ob.kind == "domain":
        goal = s.result.domain
    elif ob.kind == "clause":
        goal = CLAUSES[ob.goal].formula(cfg, s.post)
    else:
        goal = LOCAL_PROPERTIES[ob.goal](cfg, s)
    solver = z3.Then(*SOLVER_TACTIC).solver()
    solver.set("timeout", max(1, int(remaining * 1000)))
    solver.add(holds(cfg, clauses, pre), s.assumptions, z3.Not(goal))
    answer = solver.check()
    if answer == z3.unsat:
        return Answer(ob, "holds")
    if answer == z3.sat:
        return Answer(ob, "fails", describe_state(s, solver.model()))
    why = solver.reason_unknown()
    return Answer(ob, "unknown", "timeout" if why in ("timeout", "canceled") else why)


def _quiet_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and cleans up


class _HasObligation(Protocol):
    @property
    def obligation(self) -> Obligation: ...


T = TypeVar("T", bound=_HasObligation)


class Workers:
    """Worker processes for obligations; `processes=0` decides them in this process.

    A failed or timed-out proof stops early: the pool is terminated (a
    running z3 call cannot be interrupted otherwise) and started afresh
    on next use.
    """

    def __init__(self, processes: int | None = None) -> None:
        self.processes = (os.cpu_count() or 1) if processes is None else processes
        self._pool: multiprocessing.pool.Pool | None = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def run(self, tasks: list[T], decide: Callable[[T], Answer]) -> Iterator[Answer]:
        """Answers in the order they come; the slow SEGMENT ARRIVES ones start first."""
        tasks = sorted(tasks, key=lambda t: not t.obligation.action.endswith("SEGMENT ARRIVES"))
        if self.processes <= 1 or len(tasks) <= 1:
            yield from map(decide, tasks)
            return
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ctx.Pool(self.processes, initializer=_quiet_worker)
        finished = False
        try:
            yield from self._pool.imap_unordered(decide, tasks)
            finished = True
        finally:
            if not finished:
                self.close()


@dataclass
class InductionResult:
    proved: bool
    failure: str = ""
    checks: int = 0
    timed_out: bool = False
    seconds: float = 0.0


def prove_obligations(
    cfg: Config,
    assumed: tuple[str, ...],
    obligations: list[Obligation],
    deadline: float,
    workers: Workers,
    decide: Callable[[Task], Answer] = discharge,
) -> InductionResult:
    """All `obligations` hold from every state satisfying the `assumed` clauses."""
    started = time.monotonic()
    wall_deadline = time.time() + (deadline - started)
    tasks = [Task(cfg, assumed, ob, wall_deadline) for ob in obligations]
    checks = 0
    for answer in workers.run(tasks, decide):
        checks += 1
        if answer.status == "fails":
            failure = f"{answer.obligation.describe()} fails; from {answer.detail}"
            return InductionResult(False, failure, checks, seconds=time.monotonic() - started)
        if answer.status == "unknown":
            reason = f"{answer.obligation.describe()}: {answer.detail}"
            return InductionResult(
                False, reason, checks, timed_out=True, seconds=time.monotonic() - started
            )
    return InductionResult(True, checks=checks, seconds=time.monotonic() - started)


def prove_core(cfg: Config, deadline: float, workers: Workers) -> InductionResult:
    """The endpoint invariants (`invariants.LOCAL_CORE`): initial, inductive, in the domain."""
    started = time.monotonic()
    failed = _initially_false(cfg, LOCAL_CORE)
    if failed is not None:
        return InductionResult(False, f"clause {failed} fails in the initial state")
    names = tuple(c.name for c in LOCAL_CORE)
    obligations = [Obligation(a.name, "domain", "") for a in ACTIONS]
    obligations += [Obligation(a.name, "clause", n) for a in ACTIONS for n in names]
    result = prove_obligations(cfg, names, obligations, deadline, workers)
    result.seconds = time.monotonic() - started
    return result


def prove_claim(cfg: Config, claim: str, deadline: float, workers: Workers) -> InductionResult:
    """Given the core: the claim's extra clauses are inductive, and the clauses imply it."""
    started = time.monotonic()
    extra = EXTRA_CLAUSES.get(claim, ())
    failed = _initially_false(cfg, extra)
    if failed is not None:
        return InductionResult(False, f"clause {failed} fails in the initial state")
    assumed = tuple(c.name for c in (*LOCAL_CORE, *extra))
    obligations = [Obligation(a.name, "clause", c.name) for a in ACTIONS for c in extra]
    obligations += [Obligation(a.name, "property", claim) for a in ACTIONS]
    result = prove_obligations(cfg, assumed, obligations, deadline, workers)
    result.seconds = time.monotonic() - started
    return result


def _initially_false(cfg: Config, clauses: tuple[Clause, ...]) -> str | None:
    state = fresh_state("init")
    return first_false(initial(state), [(c.name, c.formula(cfg, state)) for c in clauses])


def first_false(assumption: z3.BoolRef, named: list[tuple[str, z3.BoolRef]]) -> str | None:
    """The name of the first formula that `assumption` does not imply, if any."""
    solver = z3.Solver()
    solver.add(assumption)
    for name, formula in named:
        if solver.check(z3.Not(formula)) == z3.sat:
            return name
    return None


def shown_tcb(t: SymTcb, evaluate: Callable[[z3.ExprRef], z3.ExprRef]) -> dict[str, object]:
    """A TCB's fields in a model, leaving out the zero and false ones."""
    return {k: v for k, v in tcb_view(t, evaluate).items() if v not in (0, False)}


def describe_state(s: LocalStep, model: z3.ModelRef) -> str:
    def ev(e: z3.ExprRef) -> z3.ExprRef:
        return model.eval(e, model_completion=True)

    text = f"pre-state {shown_tcb(s.pre.tcb, ev)}"
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
        opening = OpenCall(action.active, iss if action.active else None, action.remote)
        return opening, iss
    if action.event is SendCall:
        assert step.length is not None
        return SendCall(b"d" * int(value_of(step.length, ev))), iss
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
