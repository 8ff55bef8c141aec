"""A symbolic tracer: the unchanged `model.step`, run on z3 values, one path at a time.

Theory of operation.  The model computes with Python ints, bools, bytes and
frozensets.  The tracer hands it stand-ins that behave the same but carry z3
terms: `Sym` (an integer as a two's-complement bit-vector, exact while
its interval bounds stay well inside its width, `WIDTHS`; the model's `& MASK` does the modular
part), `SymBool`, `SymBytes` (text as its length), `SymTimers` (the armed
timers as three z3 Booleans).  Arithmetic builds terms; a Python branch on a
symbolic condition (`if`, `and`, `not`, `while`) calls `__bool__`, which asks
the `Explorer` which way to go.  The explorer runs the model again and again
(depth-first, by re-execution with a prefix of decisions), takes each feasible
direction once and records the path condition.  Infeasible directions are
pruned by z3 (the current path's model decides one direction for free; only
the other is checked).

Builtins that must return Python values (`len`) or that would branch where
the RFC does not (`min`, `max`) are replaced, for the duration of a trace, in
the globals of the model's modules (`traced_builtins`); the model's source
does not change.  A decision site (the model's call stack at the branch)
reached more than `max_visits` times on one path cuts the path (`CUT`): that
is how a loop whose trip count depends on a symbolic length is bounded.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

import z3

from synack.model import arrives, calls, endpoint, segment, sending, seq, tcb, timeouts
from synack.model.types import TimerKind

B = Any  # a z3 Boolean expression
BV = Any  # a z3 bit-vector expression
T = TypeVar("T")

WIDTHS = (36, 48)
"""Bit-widths the explorer tries, narrowest first (narrow terms are quicker to solve).
A value's interval must stay within +-2**(width - 2), so that the bit-vector arithmetic is
the model's integer arithmetic; sequence numbers and lengths are 32-bit, and the model adds
a few of them."""

MODEL_MODULES: tuple[ModuleType, ...] = (
    arrives,
    calls,
    endpoint,
    segment,
    sending,
    seq,
    tcb,
    timeouts,
)


class Untraceable(Exception):
    """The model did something the tracer cannot follow symbolically."""


class TooWide(Untraceable):
    """A value's interval outgrew the explorer's bit-width."""


class PathCut(Exception):
    """A decision site was reached more often than the explorer allows on one path."""


# ------------------------------------------------------------------ values


class Sym:
    """An int-like z3 term with interval bounds [lo, hi] (its Python value lies in them)."""

    __slots__ = ("ex", "expr", "hi", "lo")

    def __init__(self, ex: Explorer, expr: BV, lo: int, hi: int) -> None:
        if lo < -ex.limit or hi > ex.limit:
            raise TooWide(f"an integer may leave +-{ex.limit} ({lo}..{hi})")
        self.ex, self.expr, self.lo, self.hi = ex, expr, lo, hi

    def __repr__(self) -> str:
        return f"Sym({self.expr}, {self.lo}..{self.hi})"

    def __hash__(self) -> int:
        return id(self)

    # ---- arithmetic

    def __add__(self, other: object) -> Sym | int:
        a, b = self.ex.operand(other)
        return self.ex.num(self.expr + a, self.lo + b[0], self.hi + b[1])

    __radd__ = __add__

    def __sub__(self, other: object) -> Sym | int:
        a, b = self.ex.operand(other)
        return self.ex.num(self.expr - a, self.lo - b[1], self.hi - b[0])

    def __rsub__(self, other: object) -> Sym | int:
        a, b = self.ex.operand(other)
        return self.ex.num(a - self.expr, b[0] - self.hi, b[1] - self.lo)

    def __neg__(self) -> Sym | int:
        return self.ex.num(-self.expr, -self.hi, -self.lo)

    def __and__(self, other: object) -> Sym | int:
        a, (lo, hi) = self.ex.operand(other)
        if lo == hi and lo >= 0 and self.lo >= 0 and self.hi <= lo and (lo + 1) & lo == 0:
            return self  # x & (2**k - 1) with x already in range
        if lo >= 0 and self.lo >= 0:
            return self.ex.num(self.expr & a, 0, min(hi, self.hi))
        if lo >= 0 or self.lo >= 0:
            return self.ex.num(self.expr & a, 0, hi if lo >= 0 else self.hi)
        return self.ex.num(self.expr & a, -self.ex.limit, self.ex.limit)

    __rand__ = __and__

    def __floordiv__(self, other: object) -> Sym | int:
        if not (isinstance(other, int) and other > 0 and self.lo >= 0):
            raise Untraceable("// other than of a non-negative value by a positive constant")
        return self.ex.num(z3.UDiv(self.expr, other), self.lo // other, self.hi // other)

    # ---- comparisons (signed: Python ints)

    def __lt__(self, other: object) -> SymBool | bool:
        a, (lo, hi) = self.ex.operand(other)
        if self.hi < lo:
            return True
        if self.lo >= hi:
            return False
        return SymBool(self.ex, self.expr < a)

    def __le__(self, other: object) -> SymBool | bool:
        a, (lo, hi) = self.ex.operand(other)
        if self.hi <= lo:
            return True
        if self.lo > hi:
            return False
        return SymBool(self.ex, self.expr <= a)

    def __gt__(self, other: object) -> SymBool | bool:
        a, (lo, hi) = self.ex.operand(other)
        if self.lo > hi:
            return True
        if self.hi <= lo:
            return False
        return SymBool(self.ex, self.expr > a)

    def __ge__(self, other: object) -> SymBool | bool:
        a, (lo, hi) = self.ex.operand(other)
        if self.lo >= hi:
            return True
        if self.hi < lo:
            return False
        return SymBool(self.ex, self.expr >= a)

    def __eq__(self, other: object) -> SymBool | bool:  # type: ignore[override]
        a, (lo, hi) = self.ex.operand(other)
        if self.hi < lo or self.lo > hi:
            return False
        return SymBool(self.ex, self.expr == a)

    def __ne__(self, other: object) -> SymBool | bool:  # type: ignore[override]
        a, (lo, hi) = self.ex.operand(other)
        if self.hi < lo or self.lo > hi:
            return True
        return SymBool(self.ex, self.expr != a)

    def __bool__(self) -> bool:
        if self.lo > 0 or self.hi < 0:
            return True
        return self.ex.decide(self.expr != 0)

    def __int__(self) -> int:
        raise Untraceable("int() of a symbolic integer")

    def __index__(self) -> int:
        raise Untraceable("a symbolic integer used as an index")


class SymBool:
    """A z3 Boolean; `bool()` of it is a decision of the explorer."""

    __slots__ = ("ex", "expr")

    def __init__(self, ex: Explorer, expr: B) -> None:
        self.ex, self.expr = ex, expr

    def __repr__(self) -> str:
        return f"SymBool({self.expr})"

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        return self.ex.decide(self.expr)

    def as_num(self) -> Sym:
        return Sym(self.ex, z3.If(self.expr, self.ex.const(1), self.ex.const(0)), 0, 1)

    def __add__(self, other: object) -> Sym | int:
        return self.as_num() + other

    __radd__ = __add__

    def __sub__(self, other: object) -> Sym | int:
        return self.as_num() - other

    def __rsub__(self, other: object) -> Sym | int:
        return self.as_num().__rsub__(other)


class SymBytes:
    """Text of symbolic length (`len` through `traced_builtins`)."""

    __slots__ = ("ex", "n")

    def __init__(self, ex: Explorer, n: Sym | int) -> None:
        self.ex, self.n = ex, n

    def __repr__(self) -> str:
        return f"SymBytes({self.n!r})"

    def __hash__(self) -> int:
        return id(self)

    def __len__(self) -> int:
        raise Untraceable("builtins.len() of symbolic text")

    def __bool__(self) -> bool:
        return bool(self.n != 0)

    def __add__(self, other: object) -> SymBytes:
        return SymBytes(self.ex, self.n + length(other))

    def __radd__(self, other: object) -> SymBytes:
        return SymBytes(self.ex, length(other) + self.n)

    def __getitem__(self, key: object) -> SymBytes:
        if not isinstance(key, slice) or key.step is not None:
            raise Untraceable("symbolic text indexed other than by a plain slice")
        n = self.n
        start = 0 if key.start is None else self.ex.bound(key.start, n)
        stop = n if key.stop is None else self.ex.bound(key.stop, n)
        return SymBytes(self.ex, self.ex.maximum(0, stop - start))


class SymTimers:
    """`Tcb.timers` as one z3 Boolean (or bool) per timer kind."""

    __slots__ = ("ex", "on")

    def __init__(self, ex: Explorer, on: dict[TimerKind, B | bool]) -> None:
        self.ex, self.on = ex, on

    def __repr__(self) -> str:
        return f"SymTimers({self.on})"

    def __hash__(self) -> int:
        return id(self)

    def __contains__(self, kind: object) -> bool:
        if not isinstance(kind, TimerKind):
            return False
        value = self.on[kind]
        return value if isinstance(value, bool) else self.ex.decide(value)

    def __iter__(self) -> Iterator[TimerKind]:
        return iter([kind for kind in TimerKind if kind in self])

    def _with(self, kinds: object, value: bool) -> SymTimers:
        if not isinstance(kinds, set | frozenset):
            raise Untraceable(f"timers combined with {type(kinds).__name__}")
        return SymTimers(self.ex, {k: value if k in kinds else v for k, v in self.on.items()})

    def __or__(self, kinds: object) -> SymTimers:
        return self._with(kinds, True)

    def __sub__(self, kinds: object) -> SymTimers:
        return self._with(kinds, False)


def length(value: object) -> Sym | int:
    """`len()` for the model: a Sym for symbolic text."""
    if isinstance(value, SymBytes):
        return value.n
    return builtins.len(value)  # type: ignore[arg-type]


def _symbolic(values: tuple[Any, ...]) -> Explorer | None:
    for v in values:
        if isinstance(v, Sym | SymBool):
            return v.ex
    return None


def _fold(name: str) -> Callable[..., Any]:
    native = getattr(builtins, name)

    def folded(*args: Any, **kwargs: Any) -> Any:
        values = tuple(args[0]) if len(args) == 1 and not kwargs else args
        ex = _symbolic(values) if not kwargs else None
        if ex is None:
            return native(*args, **kwargs)
        best = values[0]
        for v in values[1:]:
            best = ex.minimum(best, v) if name == "min" else ex.maximum(best, v)
        return best

    return folded


traced_min = _fold("min")
traced_max = _fold("max")
"""`min`/`max` as the builtins choose (the first extreme value), as one term, not a branch."""


SUMMARIZED = ("seq_lt", "seq_le", "seq_gt", "seq_ge", "seq_between", "acceptable")
"""The model's pure Boolean helpers (model/seq.py) that are traced once into a summary.

Called on symbolic 32-bit values, such a helper is traced on fresh variables; the union
of its paths (each path condition with its answer) is one z3 term, cached, into which
the actual arguments are substituted.  The caller then branches once on the answer
instead of once per branch inside the helper: the model's own code, fewer paths."""


def summarized(fn: Callable[..., Any]) -> Callable[..., Any]:
    def summary(*args: Any) -> Any:
        ex = _symbolic(args)
        if ex is None or not all(
            isinstance(a, int) or (isinstance(a, Sym) and a.lo >= 0 and a.hi <= 0xFFFFFFFF)
            for a in args
        ):
            return fn(*args)
        shape = tuple("u32" if isinstance(a, Sym) else int(a) for a in args)
        key = (id(fn), shape)
        if key not in ex.summaries:
            ex.summaries[key] = ex.summarize(fn, shape)
        found = ex.summaries[key]
        if found is None:
            return fn(*args)
        variables, term = found
        actual = [z3.Extract(31, 0, a.expr) for a in args if isinstance(a, Sym)]
        return SymBool(ex, z3.substitute(term, *zip(variables, actual, strict=True)))

    return summary


@contextmanager
def traced_builtins() -> Iterator[None]:
    """`len`, `min`, `max` of the model's modules replaced while the block runs, and the
    `SUMMARIZED` helpers wrapped."""
    replaced = {"len": length, "min": traced_min, "max": traced_max}
    originals: list[tuple[ModuleType, str, Any]] = []
    for module in MODEL_MODULES:
        if any(name in vars(module) for name in replaced):
            raise RuntimeError(f"{module.__name__} already defines one of {sorted(replaced)}")
    try:
        for module in MODEL_MODULES:
            for name, fn in replaced.items():
                setattr(module, name, fn)
            for name in SUMMARIZED:
                if name in vars(module):
                    originals.append((module, name, vars(module)[name]))
                    setattr(module, name, summarized(vars(module)[name]))
        yield
    finally:
        for module, name, fn in originals:
            setattr(module, name, fn)
        for module in MODEL_MODULES:
            for name in replaced:
                vars(module).pop(name, None)


# ---------------------------------------------------------------- explorer


@dataclass(frozen=True)
class Path(Generic[T]):
    """One path through the model: its condition, its result (None when cut), its decisions."""

    condition: tuple[B, ...]
    result: T | None
    decisions: tuple[bool, ...]
    cut: str = ""

    @property
    def pc(self) -> B:
        return z3.And(z3.BoolVal(True), *self.condition)


@dataclass
class Stats:
    runs: int = 0
    decisions: int = 0
    solver_checks: int = 0


MODEL_PREFIX = "synack.model."
TACTIC = ("simplify", "propagate-values", "solve-eqs", "bit-blast", "sat")
"""As `induction.SOLVER_TACTIC`: a fresh bit-blasting solver per query."""


class Explorer:
    """Depth-first exploration of the model's branches under `assumptions`."""

    def __init__(
        self, assumptions: list[B] | None = None, max_visits: int = 3, width: int = WIDTHS[0]
    ) -> None:
        self.width = width
        self.limit = 1 << (width - 2)
        self.assumptions = list(assumptions or [])
        self.max_visits = max_visits
        self.stats = Stats()
        self._prefix: tuple[bool, ...] = ()
        self._model: Any = None
        self._taken: list[bool] = []
        self._pc: list[B] = []
        self._known: dict[int, bool] = {}
        self._visits: dict[tuple[tuple[Any, int], ...], int] = {}
        self._pending: list[tuple[tuple[bool, ...], Any]] = []
        self.summaries: dict[tuple[int, tuple[object, ...]], Any] = {}

    # ---- values

    def var(self, name: str, bits: int = 32) -> tuple[BV, Sym]:
        """A fresh unsigned `bits`-wide variable and its Sym."""
        v = z3.BitVec(name, bits)
        return v, self.widen(v)

    def widen(self, v: BV) -> Sym:
        """An unsigned bit-vector as a Sym."""
        return Sym(self, z3.ZeroExt(self.width - v.size(), v), 0, (1 << v.size()) - 1)

    def const(self, v: int) -> BV:
        return z3.BitVecVal(v, self.width)

    def num(self, expr: BV, lo: int, hi: int) -> Sym | int:
        if lo == hi:
            return lo
        return Sym(self, expr, lo, hi)

    def operand(self, value: object) -> tuple[BV, tuple[int, int]]:
        """A term and interval for the other operand of an operator."""
        if isinstance(value, Sym):
            return value.expr, (value.lo, value.hi)
        if isinstance(value, SymBool):
            n = value.as_num()
            return n.expr, (0, 1)
        if isinstance(value, int):  # bool too
            v = int(value)
            return self.const(v), (v, v)
        raise Untraceable(f"an operator between a symbolic integer and {type(value).__name__}")

    def select(
        self, cond: SymBool | bool, a: Any, b: Any, bounds: tuple[int, int] | None = None
    ) -> Any:
        """`a if cond else b` as one term (ints and Syms only); `bounds` narrows its interval."""
        if isinstance(cond, bool):
            return a if cond else b
        ea, (la, ha) = self.operand(a)
        eb, (lb, hb) = self.operand(b)
        lo, hi = bounds if bounds is not None else (min(la, lb), max(ha, hb))
        return self.num(z3.If(cond.expr, ea, eb), lo, hi)

    def minimum(self, a: Any, b: Any) -> Any:
        """`min(a, b)`: a unless b < a."""
        (_, (la, ha)), (_, (lb, hb)) = self.operand(a), self.operand(b)
        return self.select(b < a, b, a, (min(la, lb), min(ha, hb)))

    def maximum(self, a: Any, b: Any) -> Any:
        """`max(a, b)`: a unless b > a."""
        (_, (la, ha)), (_, (lb, hb)) = self.operand(a), self.operand(b)
        return self.select(b > a, b, a, (max(la, lb), max(ha, hb)))

    def bound(self, index: Sym | int, n: Sym | int) -> Sym | int:
        """A slice bound as Python clips it to [0, n] (negative counts from the end)."""
        if isinstance(index, int) and isinstance(n, int):
            return slice(index, None).indices(n)[0]
        from_end = self.maximum(0, n + index)
        clipped: Sym | int = self.select(index < 0, from_end, self.minimum(index, n))
        return clipped

    # ---- decisions

    def check(self, *conditions: B) -> Any:
        """A model of the assumptions and `conditions`, or None if there is none."""
        self.stats.solver_checks += 1
        solver = z3.Then(*TACTIC).solver()
        solver.add(*self.assumptions, *conditions)
        answer = solver.check()
        if answer == z3.unknown:
            raise RuntimeError(f"z3 gave up: {solver.reason_unknown()}")
        return solver.model() if answer == z3.sat else None

    def _site(self) -> tuple[tuple[Any, int], ...]:
        frame = sys._getframe(2)
        site = []
        while frame is not None:
            if frame.f_globals.get("__name__", "").startswith(MODEL_PREFIX):
                site.append((frame.f_code, frame.f_lineno))
            frame = frame.f_back  # type: ignore[assignment]
        return tuple(site)

    def decide(self, cond: B) -> bool:
        """Which way the current path goes at `cond`; the other way is queued if feasible."""
        key = cond.get_id()
        if key in self._known:
            return self._known[key]
        site = self._site()
        self._visits[site] = visits = self._visits.get(site, 0) + 1
        if visits > self.max_visits:
            raise PathCut(f"a decision site reached {visits} times")
        i = len(self._taken)
        if i < len(self._prefix):
            way = self._prefix[i]
        else:
            self.stats.decisions += 1
            way = z3.is_true(self._model.eval(cond, model_completion=True))
            other = z3.Not(cond) if way else cond
            self.stats.solver_checks += 1
            model = self.check(*self._pc, other)
            if model is not None:
                self._pending.append(((*self._taken, not way), model))
        self._taken.append(way)
        self._pc.append(cond if way else z3.Not(cond))
        self._known[key] = way
        return way

    def explore(self, run: Callable[[], T]) -> list[Path[T]]:
        """Every feasible path of `run` (with the model's builtins traced)."""
        with traced_builtins():
            return self._paths(run)

    def summarize(self, fn: Callable[..., Any], shape: tuple[object, ...]) -> Any:
        """(variables, term): `fn`'s answer on fresh 32-bit variables (`SUMMARIZED`), or
        None if it is not a Boolean on every path."""
        inner = Explorer(max_visits=self.max_visits, width=self.width)
        variables: list[BV] = []
        args: list[object] = []
        for i, slot in enumerate(shape):
            if slot == "u32":
                v, sym = inner.var(f"{fn.__name__}.{i}")
                variables.append(v)
                args.append(sym)
            else:
                args.append(slot)
        paths = inner._paths(lambda: fn(*args))
        answers = []
        for p in paths:
            if isinstance(p.result, SymBool):
                answers.append(z3.And(p.pc, p.result.expr))
            elif isinstance(p.result, bool) and not p.cut:
                answers.append(z3.And(p.pc, z3.BoolVal(p.result)))
            else:
                return None
        self.stats.solver_checks += inner.stats.solver_checks
        return variables, z3.simplify(z3.Or(z3.BoolVal(False), *answers))

    def _paths(self, run: Callable[[], T]) -> list[Path[T]]:
        model = self.check()
        if model is None:
            return []
        self._pending = [((), model)]
        paths: list[Path[T]] = []
        while self._pending:
            self._prefix, self._model = self._pending.pop()
            self._taken, self._pc, self._known, self._visits = [], [], {}, {}
            self.stats.runs += 1
            try:
                result: T | None = run()
                cut = ""
            except PathCut as stop:
                result, cut = None, str(stop)
            paths.append(Path(tuple(self._pc), result, tuple(self._taken), cut))
        return paths
