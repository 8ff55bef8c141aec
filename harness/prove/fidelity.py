"""The prover's fidelity as a theorem: the hand encoding equals the traced model.

For one configuration, every state and every event kind (a `Case`), the
tracer (`trace.py`) runs the unchanged `model.step` on symbolic inputs and
yields its paths.  The hand encoding (`z3step.step`) is built from the same
z3 variables.  For each path, z3 must find no input satisfying the path
condition and the encoding's `domain` on which the two differ in any TCB field
or in the output list (`unsat` of "hand != traced"); a path the tracer cut
(the segmentizing loop beyond `LOOP_BOUND`) must lie outside the domain; and
the paths together must cover every input.

Inputs: every sequence number, window and length is an unconstrained 32-bit
value, every TCB flag and timer an unconstrained Boolean, the segment's flags
six Booleans; the state and the event kind are concrete per case.  The
segment is one `Segment` admits (SEG.WND and the urgent pointer 16-bit), and
`PRECONDITION` is assumed of the TCB.  Text is its length: every length in
the model's result must fit 32 bits, as the encoding's lengths do.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import z3

from synack.harness.prove import z3step
from synack.harness.prove.induction import SOLVER_TACTIC
from synack.harness.prove.invariants import LOCAL_CORE, holds
from synack.harness.prove.trace import (
    WIDTHS,
    Explorer,
    Path,
    Sym,
    SymBool,
    SymBytes,
    SymTimers,
    TooWide,
    Untraceable,
)
from synack.harness.prove.z3local import LocalState
from synack.harness.prove.z3tcb import (
    BOOL_FIELDS,
    LOOP_BOUND,
    RETRY_BITS,
    SEG_FIELDS,
    STATES,
    TCB_FIELDS,
    TIMER_OF_FIELD,
    OutKind,
    Outs,
    SymOut,
    SymSeg,
    SymTcb,
    bv,
    state_val,
)
from synack.model import (
    AbortCall,
    CloseCall,
    Config,
    Deliver,
    Emit,
    Event,
    OpenCall,
    Output,
    ReceiveCall,
    Segment,
    SegmentArrives,
    SendCall,
    Signal,
    State,
    Tcb,
    Timeout,
    TimerKind,
)
from synack.model.endpoint import step as model_step
from synack.model.types import TimerCancel, TimerSet

B = Any
BV = Any

NUMERIC_FIELDS = tuple(
    n
    for n in TCB_FIELDS
    if n not in BOOL_FIELDS and n not in ("state", "retries", "snd_buf", "rcv_buf")
)
FLAG_BITS = {"fin": 0, "syn": 1, "rst": 2, "psh": 3, "ack_bit": 4, "urg": 5}
"""Where each flag of `SymSeg` sits in `Segment.bits` (`Flags`' wire values)."""

UNTRACED: dict[str, str] = {}
"""Handler/case -> why the tracer cannot follow it (the sampled check in
tests/test_z3_relation.py covers these).  Empty: every case is traced."""


# ----------------------------------------------------------------- cases


@dataclass(frozen=True)
class EventSpec:
    """An event kind with its concrete parameters; the rest is symbolic."""

    label: str
    kind: type
    active: bool = False
    remote: bool = False
    timer: TimerKind | None = None


EVENTS: tuple[EventSpec, ...] = (
    EventSpec("OPEN passive", OpenCall),
    EventSpec("OPEN passive, remote named", OpenCall, remote=True),
    EventSpec("OPEN active", OpenCall, active=True),
    EventSpec("SEND", SendCall),
    EventSpec("RECEIVE", ReceiveCall),
    EventSpec("CLOSE", CloseCall),
    EventSpec("ABORT", AbortCall),
    EventSpec("SEGMENT ARRIVES", SegmentArrives),
    *(EventSpec(f"TIMEOUT {k.value}", Timeout, timer=k) for k in TimerKind),
)


@dataclass(frozen=True)
class Case:
    state: State
    event: EventSpec

    @property
    def name(self) -> str:
        return f"{self.state} / {self.event.label}"


def cases() -> list[Case]:
    return [Case(s, e) for s in State for e in EVENTS]


# ---------------------------------------------------------------- inputs


@dataclass
class Inputs:
    """One case's inputs, twice: for the encoding and for the traced model."""

    hand_tcb: SymTcb
    hand_event: z3step.SymEvent
    model_tcb: Tcb
    model_event: Event
    assumptions: list[B]


class _UnreadFlags:
    """The input segment's `flags`: no handler reads them (`bits` carries them); if one
    did, the case is untraced rather than traced with made-up flags."""

    def _refuse(self, *args: object) -> Any:
        raise Untraceable("a handler read Segment.flags of the arriving segment")

    __contains__ = __and__ = __or__ = __int__ = __index__ = __bool__ = __iter__ = _refuse
    __eq__ = __ne__ = _refuse
    __hash__ = None  # type: ignore[assignment]


def _input_segment(ex: Explorer) -> tuple[SymSeg, Segment, list[B]]:
    bits = z3.BitVec("seg.bits", 6)
    values: dict[str, Any] = {n: z3.Extract(i, i, bits) == 1 for n, i in FLAG_BITS.items()}
    syms: dict[str, Sym] = {}
    for name in ("seq", "ack", "wnd", "length", "up"):
        values[name], syms[name] = ex.var(f"seg.{name}")
    hand = SymSeg(**{n: values[n] for n in SEG_FIELDS})
    seg = object.__new__(Segment)  # the fields a Segment would check are assumed below
    for name, value in (
        ("flags", _UnreadFlags()),  # `bits` carries them
        ("seq", syms["seq"]),
        ("ack", syms["ack"]),
        ("wnd", syms["wnd"]),
        ("payload", SymBytes(ex, syms["length"])),
        ("up", syms["up"]),
        ("bits", ex.widen(bits)),
        ("_hash", 0),
    ):
        object.__setattr__(seg, name, value)
    # SEG.WND and the urgent pointer are 16-bit fields (`Segment` checks them); the text
    # is what an IPv4 datagram can carry, as in the two-endpoint proofs.  (The encoding's
    # 32-bit SEG.LEN wraps for text of 2**32 - 2 octets or more, where the model's does not.)
    valid = [z3.ULE(values[n], 0xFFFF) for n in ("wnd", "up", "length")]
    return hand, seg, valid


def inputs(ex: Explorer, cfg: Config, case: Case) -> Inputs:
    hand: dict[str, Any] = {"state": state_val(case.state)}
    model: dict[str, Any] = {"state": case.state, "cfg": cfg}
    for name in NUMERIC_FIELDS:
        hand[name], model[name] = ex.var(f"t.{name}")
    hand["retries"], model["retries"] = ex.var("t.retries", RETRY_BITS)
    for name in ("snd_buf", "rcv_buf"):
        hand[name], n = ex.var(f"t.{name}")
        model[name] = SymBytes(ex, n)
    timers: dict[TimerKind, Any] = {}
    for name in sorted(BOOL_FIELDS):
        hand[name] = z3.Bool(f"t.{name}")
        if name in TIMER_OF_FIELD:
            timers[TIMER_OF_FIELD[name]] = hand[name]
        else:
            model[name] = SymBool(ex, hand[name])
    model["timers"] = SymTimers(ex, timers)
    new_iss, iss_sym = ex.var("ev.new_iss")
    model["iss_pool"] = (iss_sym,)
    spec = case.event
    assumptions: list[B] = []
    event: Event
    if spec.kind is OpenCall:
        event = OpenCall(active=spec.active, remote=spec.remote)
        sym_event = z3step.SymEvent(
            OpenCall, active=spec.active, remote=spec.remote, new_iss=new_iss
        )
    elif spec.kind is SendCall:
        length, n = ex.var("ev.length")
        event = SendCall(SymBytes(ex, n))  # type: ignore[arg-type]
        sym_event = z3step.SymEvent(SendCall, length=length, new_iss=new_iss)
        # text is its 32-bit length: the queue after the SEND must have one
        assumptions = [z3.ULE(hand["snd_buf"], 0xFFFFFFFF - length)]
    elif spec.kind is SegmentArrives:
        hand_seg, seg, assumptions = _input_segment(ex)
        event = SegmentArrives(seg)
        sym_event = z3step.SymEvent(SegmentArrives, segment=hand_seg, new_iss=new_iss)
    elif spec.kind is Timeout:
        assert spec.timer is not None
        event = Timeout(spec.timer)
        sym_event = z3step.SymEvent(Timeout, timer=spec.timer)
    else:
        event = spec.kind()
        sym_event = z3step.SymEvent(spec.kind)
    return Inputs(SymTcb(**hand), sym_event, Tcb(**model), event, assumptions)


# ----------------------------------------------------- the traced result


def _bits32(value: object, bits: int = 32) -> tuple[BV, B]:
    """A traced integer as a `bits`-wide term, and the condition that it fits."""
    if isinstance(value, SymBool):
        value = value.as_num()
    if isinstance(value, Sym):
        fits = (
            z3.And(value.expr >= 0, value.expr < (1 << bits))
            if value.hi >= (1 << bits) or value.lo < 0
            else z3.BoolVal(True)
        )
        return z3.Extract(bits - 1, 0, value.expr), fits
    if isinstance(value, bool | int):
        v = int(value)
        if 0 <= v < (1 << bits):
            return bv(v, bits), z3.BoolVal(True)
        return bv(v % (1 << bits), bits), z3.BoolVal(False)
    raise Untraceable(f"a result field of type {type(value).__name__}")


def _bool(value: object) -> B:
    if isinstance(value, SymBool):
        return value.expr
    if isinstance(value, bool):
        return z3.BoolVal(value)
    raise Untraceable(f"a result flag of type {type(value).__name__}")


def _length(data: object) -> Sym | int:
    if isinstance(data, SymBytes):
        return data.n
    if isinstance(data, bytes):
        return len(data)
    raise Untraceable(f"text of type {type(data).__name__}")


def _has_timer(timers: object, kind: TimerKind) -> B:
    if isinstance(timers, SymTimers):
        on = timers.on[kind]
        return z3.BoolVal(on) if isinstance(on, bool) else on
    if isinstance(timers, frozenset | set):
        return z3.BoolVal(kind in timers)
    raise Untraceable(f"timers of type {type(timers).__name__}")


@dataclass
class Traced:
    """A path's result as z3 terms: TCB fields, outputs, and what must fit 32 bits."""

    fields: dict[str, B]
    fits: list[B]
    representable: list[B]
    outputs: list[tuple[str, Any]]


def _seg_terms(seg: Segment, t: Traced) -> tuple[B, ...]:
    bits = seg.bits
    if not isinstance(bits, int):
        raise Untraceable("a segment built with symbolic flags")
    terms: list[B] = []
    for name in SEG_FIELDS:
        if name in FLAG_BITS:
            terms.append(z3.BoolVal(bool(bits >> FLAG_BITS[name] & 1)))
            continue
        value = _length(seg.payload) if name == "length" else getattr(seg, name)
        term, fits = _bits32(value)
        (t.representable if name == "length" else t.fits).append(fits)
        terms.append(term)
    return tuple(terms)


def traced(after: Tcb, outputs: tuple[Output, ...]) -> Traced:
    t = Traced({}, [], [], [])
    for name in TCB_FIELDS:
        if name == "state":
            t.fields[name] = state_val(after.state)
        elif name in TIMER_OF_FIELD:
            t.fields[name] = _has_timer(after.timers, TIMER_OF_FIELD[name])
        elif name in BOOL_FIELDS:
            t.fields[name] = _bool(getattr(after, name))
        else:
            is_text = name in ("snd_buf", "rcv_buf")
            value = _length(getattr(after, name)) if is_text else getattr(after, name)
            term, fits = _bits32(value, RETRY_BITS if name == "retries" else 32)
            (t.representable if is_text else t.fits).append(fits)
            t.fields[name] = term
    for o in outputs:
        if isinstance(o, Emit):
            t.outputs.append((OutKind.EMIT.value, _seg_terms(o.segment, t)))
        elif isinstance(o, Deliver):
            term, fits = _bits32(_length(o.data))
            t.representable.append(fits)
            t.outputs.append((OutKind.DELIVER.value, term))
        elif isinstance(o, Signal):
            t.outputs.append((OutKind.SIGNAL.value, o.reply))
        elif isinstance(o, TimerSet):
            t.outputs.append((OutKind.TIMER_SET.value, o.kind))
        elif isinstance(o, TimerCancel):
            t.outputs.append((OutKind.TIMER_CANCEL.value, o.kind))
    return t


def _same_output(h: SymOut, kind: str, value: Any) -> B:
    if h.kind.value != kind:
        return z3.BoolVal(False)
    if h.kind is OutKind.EMIT:
        assert h.segment is not None
        return z3.And(*[getattr(h.segment, n) == v for n, v in zip(SEG_FIELDS, value, strict=True)])
    if h.kind is OutKind.DELIVER:
        return h.length == value
    if h.kind is OutKind.SIGNAL:
        return z3.BoolVal(h.reply is value)
    return z3.BoolVal(h.timer is value)


def same_outputs(hand: list[SymOut], model: list[tuple[str, Any]]) -> B:
    """The hand outputs whose guards hold are, in order, exactly `model`."""
    memo: dict[tuple[int, int], B] = {}

    def rest(i: int, j: int) -> B:
        if (i, j) in memo:
            return memo[i, j]
        if i == len(hand):
            result = z3.BoolVal(j == len(model))
        else:
            h = hand[i]
            taken = z3.BoolVal(False)
            if j < len(model):
                taken = z3.And(_same_output(h, *model[j]), rest(i + 1, j + 1))
            result = z3.If(h.guard, taken, rest(i + 1, j))
        memo[i, j] = result
        return result

    return rest(0, 0)


# ----------------------------------------------------------------- theorem


@dataclass
class CaseResult:
    case: Case
    paths: int
    cut: int
    seconds: float
    problems: list[str] = field(default_factory=list)
    untraced: str = ""
    trace_seconds: float = 0.0
    """Of `seconds`, the tracer's (exploring the model's paths, its z3 checks included)."""


def _describe(m: Any, hand: SymTcb, outs: list[SymOut], t: Traced) -> str:
    """The fields and outputs that differ on the counterexample `m`."""

    def val(term: Any) -> object:
        v = m.eval(term, True)
        return bool(z3.is_true(v)) if z3.is_bool(v) else v.as_long()

    diffs = []
    for name in TCB_FIELDS:
        a, b = val(getattr(hand, name)), val(t.fields[name])
        if a != b:
            if name == "state":
                a, b = STATES[int(a)], STATES[int(b)]  # type: ignore[call-overload]
            diffs.append(f"{name}: model {b}, z3 {a}")
    shown = [f"{v}={val(v)}" for v in sorted(m.decls(), key=str) for v in [v()]]
    model_outs = [(k, tuple(val(x) for x in v) if k == "emit" else v) for k, v in t.outputs]
    hand_outs = [
        (
            o.kind.value,
            tuple(val(getattr(o.segment, n)) for n in SEG_FIELDS)
            if o.segment
            else o.reply or o.timer or val(o.length),
        )
        for o in outs
        if val(o.guard)
    ]
    if model_outs != hand_outs:
        diffs.append(f"outputs: model {model_outs}, z3 {hand_outs}")
    return "; ".join(diffs) + " at " + ", ".join(shown)


def endpoint_invariants(cfg: Config, t: SymTcb) -> B:
    """`invariants.LOCAL_CORE`, the endpoint invariants the induction proves, of `t`."""
    zero = bv(0, RETRY_BITS)
    return holds(cfg, LOCAL_CORE, LocalState(t, zero, zero, zero))


PRECONDITION: Callable[[Config, SymTcb], B] | None = endpoint_invariants
"""What is assumed of the TCB.  Without it the encoding and the model differ on TCBs
no step reaches (e.g. CLOSED with text in flight and none queued: the model's
retransmission carries `snd_buf[:n]`, empty, the encoding n octets)."""


def _trace(
    cfg: Config, case: Case, max_visits: int
) -> tuple[Inputs, list[B], list[Path[tuple[Tcb, tuple[Output, ...]]]]]:
    """The model's paths for `case`, at the narrowest width that holds its values."""
    for width in WIDTHS:
        ex = Explorer(max_visits=max_visits, width=width)
        inp = inputs(ex, cfg, case)
        base = list(inp.assumptions)
        if PRECONDITION is not None:
            base.append(PRECONDITION(cfg, inp.hand_tcb))
        ex.assumptions += base
        try:
            return (
                inp,
                base,
                ex.explore(functools.partial(model_step, inp.model_tcb, inp.model_event)),
            )
        except TooWide:
            if width == WIDTHS[-1]:
                raise
    raise AssertionError("unreachable")


def _simplified(hand: z3step.StepResult) -> z3step.StepResult:
    """The encoding's result simplified (the state is concrete: most branches fold away);
    outputs whose guard is false are left out."""
    tcb = SymTcb(**{n: z3.simplify(getattr(hand.tcb, n)) for n in TCB_FIELDS})
    outs = Outs()
    for o in hand.outs.items:
        guard = z3.simplify(o.guard)
        if z3.is_false(guard):
            continue
        seg = o.segment
        if seg is not None:
            seg = SymSeg(**{n: z3.simplify(getattr(seg, n)) for n in SEG_FIELDS})
        length = None if o.length is None else z3.simplify(o.length)
        outs.items.append(replace(o, guard=guard, segment=seg, length=length))
    return z3step.StepResult(tcb, outs, z3.simplify(hand.domain))


JOINT_MS = 200


def _differs(query: list[B], hand: z3step.StepResult, outs: list[SymOut], t: Traced) -> Any:
    """A counterexample to "the encoding computes `t`" under `query`, or None.  All at
    once first; if that takes more than `JOINT_MS`, one obligation per field and one for
    the outputs (on the segmentizing loop's paths they are much quicker together)."""
    goals = [z3.And(*t.fits)]
    goals += [getattr(hand.tcb, n) == t.fields[n] for n in TCB_FIELDS]
    goals.append(same_outputs(outs, t.outputs))
    goals = [g for g in goals if not z3.is_true(z3.simplify(g))]
    try:
        return _check([*query, *t.representable, z3.Not(z3.And(True, *goals))], JOINT_MS)
    except GaveUp:
        pass
    for goal in goals:
        m = _check([*query, *t.representable, z3.Not(goal)])
        if m is not None:
            return m
    return None


def prove_case(cfg: Config, case: Case, max_visits: int = LOOP_BOUND + 1) -> CaseResult:
    """The theorem for one case: each traced path equals the encoding, inside its domain."""
    start = time.perf_counter()
    try:
        inp, base, paths = _trace(cfg, case, max_visits)
    except Untraceable as why:
        return CaseResult(case, 0, 0, time.perf_counter() - start, untraced=str(why))
    hand = _simplified(z3step.step(cfg, inp.hand_tcb, inp.hand_event))
    outs = hand.outs.items
    covering = [p.pc for p in paths]
    result = CaseResult(case, len(paths), 0, 0.0, trace_seconds=time.perf_counter() - start)
    result.cut = sum(p.result is None for p in paths)
    if len(paths) > 1 and _all_at_once(base, paths, hand, outs):
        paths = []  # proved; the coverage check below still runs on `covering`
    for path in paths:
        query = [*base, *path.condition, hand.domain]
        if path.result is None:
            if _check(query) is not None:
                result.problems.append(
                    f"{cfg_name(cfg)} {case.name}: a path the tracer cut ({path.cut}) lies "
                    "inside the domain"
                )
                break
            continue
        try:
            t = traced(*path.result)
        except Untraceable as why:
            return CaseResult(case, len(paths), 0, time.perf_counter() - start, untraced=str(why))
        m = _differs(query, hand, outs, t)
        if m is not None:
            detail = _describe(m, hand.tcb, outs, t)
            result.problems.append(f"{cfg_name(cfg)} {case.name}: {detail}")
            break
    if not result.problems:
        covered = z3.Or(z3.BoolVal(False), *covering)
        if _check([*base, z3.Not(covered)]) is not None:
            result.problems.append(f"{cfg_name(cfg)} {case.name}: the traced paths miss an input")
    result.seconds = time.perf_counter() - start
    return result


CASE_MS = 60_000


def _all_at_once(
    base: list[B],
    paths: list[Path[tuple[Tcb, tuple[Output, ...]]]],
    hand: z3step.StepResult,
    outs: list[SymOut],
) -> bool:
    """Every path's obligation in one query (the encoding is bit-blasted once, not once
    per path).  False when that is not unsat within `CASE_MS`: the paths are then
    checked one by one, which also names the failing one."""
    bad = []
    for path in paths:
        if path.result is None:
            bad.append(path.pc)
            continue
        try:
            t = traced(*path.result)
        except Untraceable:
            return False
        equal = z3.And(
            *t.fits,
            *[getattr(hand.tcb, n) == t.fields[n] for n in TCB_FIELDS],
            same_outputs(outs, t.outputs),
        )
        bad.append(z3.And(path.pc, *t.representable, z3.Not(equal)))
    try:
        return _check([*base, hand.domain, z3.Or(*bad)], CASE_MS) is None
    except GaveUp:
        return False


class GaveUp(Exception):
    """z3 answered unknown (within the time given)."""


def _check(assertions: list[B], timeout_ms: int = 0) -> Any:
    """A model of `assertions`, or None when they are unsat (a fresh solver each time:
    the bit-blaster after simplification, as the induction's obligations use)."""
    solver = z3.Then(*SOLVER_TACTIC).solver()
    if timeout_ms:
        solver.set("timeout", timeout_ms)
    solver.add(*assertions)
    answer = solver.check()
    if answer == z3.unknown:
        raise GaveUp(solver.reason_unknown())
    return solver.model() if answer == z3.sat else None


def cfg_name(cfg: Config) -> str:
    name = cfg.variant.value if cfg.variant is not None else cfg.profile.value
    return f"{name}(rcv_wnd={cfg.rcv_wnd}, mss={cfg.mss})"


def prove_config(cfg: Config, which: Iterable[Case] | None = None) -> list[CaseResult]:
    return [prove_case(cfg, case) for case in (cases() if which is None else which)]
