"""The endpoint transition relation of `model/` in z3.

`step(cfg, tcb, event)` mirrors `synack.model.step` function for function
(each one below names its twin), over symbolic values: 32-bit
bit-vectors for every sequence number and window, compared modulo 2**32
through `z3seq`.  The configuration stays concrete (a profile or variant
is a Python-level choice, as in the model), so one call builds the
relation of one configuration.

Two abstractions, both checked by the fidelity test:

- text is its length: the encoding tracks how many octets are queued,
  sent, received and delivered, never which ones;
- the segmentizing loop of `transmit` is unrolled `LOOP_BOUND` times.
  The result carries `domain`, the condition that the unrolling was
  enough; a proof must show that its transitions stay inside it.

`check_encoded(cfg)` refuses (`UnencodedConfig`) every configuration the
encoding does not cover, rather than build the relation of another one.

Branches are merged with `ite` over whole TCBs.  Outputs are collected
in program order, each with the path condition under which it happens,
so the outputs of one concrete run are those whose guard is true.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

import z3

from synack.model import Deliver, Emit, Flags, Output, Segment, Signal, State, Tcb, TimerKind
from synack.model.config import DEFAULT_CONFIG, PROFILE_RULES, Config, Variant
from synack.model.sending import SENDING_STATES
from synack.model.types import SYNCHRONIZED, Reply, TimerCancel, TimerSet

BV = Any  # a z3 bit-vector expression (z3 ships no type information)
B = Any  # a z3 Boolean expression

STATES: tuple[State, ...] = tuple(State)
STATE_BITS = 4
RETRY_BITS = 8
LOOP_BOUND = 2
"""Text segments `transmit` may send in one call; enough when the queued text
is at most 2 * MSS (the proofs' systems keep it there)."""
WND_FIELD_MAX = 0xFFFF
"""The largest SEG.WND (a 16-bit field; the model has no window scaling)."""

S = State

# ------------------------------------------------- what is encoded

ENCODED_FIELDS = frozenset(
    {
        "profile",  # through its rules: ENCODED_RULES
        "variant",  # ENCODED_VARIANTS
        "syn_retries",
        "synack_retries",
        "retries",
        "rcv_wnd",
        "mss",
        "user_timeout",
        "listener_kept",
        "header_prediction",
        "disabled",  # through `Config.rule`
    }
)
"""The `Config` fields the encoding reads; any other field must keep its default."""
ENCODED_RULES = frozenset(
    {
        "abort-rst-ack",
        "abort-unread-resets",
        "closing-text-step",
        "data-after-fin-resets",
        "fin-received-ignores",
        "flagless-dropped",
        "header-prediction",
        "header-syn",
        "listen-syn-fin",
        "old-ack-challenge",
        "request-socket",
        "reset-at-fin",
        "retransmit-collapse",
        "retransmitted-syn",
        "rst-challenge",
        "simultaneous-ack-of-nothing",
        "simultaneous-synack",
        "syn-challenge",
        "syn-sent-refused",
        "synack-no-text",
        "tcp-sequence",
        "tcp-sequence-queue",
        "time-wait-rst-ignored",
        "time-wait-syn",
        "timewait-socket",
    }
)
"""The profile rules the encoding consults (`self.cfg.rule(...)`), each at its model site."""
ENCODED_VARIANTS = frozenset(
    {
        Variant.TWO_WAY_HANDSHAKE,
        Variant.NO_TIME_WAIT,
        Variant.UNCHECKED_SYNACK,
        Variant.EARLY_CLOSE,
        Variant.NO_HALF_CLOSE,
        Variant.NO_GIVE_UP,
    }
)
MAX_ENCODED_WND = 1 << 30
"""The largest `rcv_wnd`: windows stay far below 2**31, where 32-bit sequence
comparisons of the window's ends stay unambiguous."""
MAX_ENCODED_MSS = (1 << 32) - 1
"""Segment lengths are 32-bit bit-vectors."""
MAX_ENCODED_RETRIES = (1 << (RETRY_BITS - 1)) - 1
"""The retry counter is RETRY_BITS wide; counting up to the limit must not wrap."""


class UnencodedConfig(ValueError):
    """A configuration the z3 encoding does not cover: a proof about it would be a proof
    about some other configuration.  `field` and `value` name what is not covered."""

    def __init__(self, field: str, value: object, why: str) -> None:
        self.field = field
        self.value = value
        shown = value.value if isinstance(value, Enum) else value
        super().__init__(f"the z3 encoding does not cover {field}={shown!r}: {why}")


def check_encoded(cfg: Config) -> None:
    """Raise `UnencodedConfig` unless the encoding covers `cfg` exactly."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name not in ENCODED_FIELDS and value != getattr(DEFAULT_CONFIG, f.name):
            raise UnencodedConfig(f.name, value, "the encoding does not read this field")
    if cfg.variant is not None and cfg.variant not in ENCODED_VARIANTS:
        raise UnencodedConfig("variant", cfg.variant, "the variant is not encoded")
    known = sorted({r.id for rules in PROFILE_RULES.values() for r in rules})
    missing = [rule for rule in known if cfg.rule(rule) and rule not in ENCODED_RULES]
    if missing:
        raise UnencodedConfig("profile", cfg.profile, f"its rule {missing[0]!r} is not encoded")
    for name in ("syn_retries", "synack_retries", "retries"):
        value = getattr(cfg, name)
        if not 0 <= value <= MAX_ENCODED_RETRIES:
            raise UnencodedConfig(name, value, f"retry counts are at most {MAX_ENCODED_RETRIES}")
    if not 0 <= cfg.rcv_wnd <= MAX_ENCODED_WND:
        raise UnencodedConfig("rcv_wnd", cfg.rcv_wnd, f"windows are at most {MAX_ENCODED_WND}")
    if not 1 <= cfg.mss <= MAX_ENCODED_MSS:
        raise UnencodedConfig("mss", cfg.mss, f"lengths are 32-bit (at most {MAX_ENCODED_MSS})")


def bv(value: int, bits: int = 32) -> BV:
    return z3.BitVecVal(value, bits)


def state_val(state: State) -> BV:
    return bv(STATES.index(state), STATE_BITS)


def is_state(expr: BV, *states: State) -> B:
    return z3.Or(*[expr == state_val(s) for s in states])


def umin(a: BV, b: BV) -> BV:
    return z3.If(z3.ULE(a, b), a, b)


def umax(a: BV, b: BV) -> BV:
    return z3.If(z3.ULE(a, b), b, a)


# ------------------------------------------------------------- values


@dataclass(frozen=True)
class SymTcb:
    """`model.tcb.Tcb` with text as lengths and timers as three flags."""

    state: BV
    passive_open: B
    remote_specified: B
    iss: BV
    irs: BV
    snd_una: BV
    syn_acked: B
    snd_nxt: BV
    snd_wnd: BV
    snd_wl1: BV
    snd_wl2: BV
    max_snd_wnd: BV
    rcv_nxt: BV
    rcv_up: BV
    snd_buf: BV
    fin_queued: B
    fin_sent: B
    rcv_buf: BV
    recv_pending: B
    eof_queued: B
    rtx_timer: B
    tw_timer: B
    user_timer: B
    retries: BV

    def timer(self, kind: TimerKind) -> B:
        return {
            TimerKind.RETRANSMISSION: self.rtx_timer,
            TimerKind.TIME_WAIT: self.tw_timer,
            TimerKind.USER: self.user_timer,
        }[kind]

    def with_timer(self, kind: TimerKind, on: B) -> SymTcb:
        name = {
            TimerKind.RETRANSMISSION: "rtx_timer",
            TimerKind.TIME_WAIT: "tw_timer",
            TimerKind.USER: "user_timer",
        }[kind]
        return replace(self, **{name: on})


TCB_FIELDS = tuple(f.name for f in fields(SymTcb))
BOOL_FIELDS = frozenset(
    {
        "passive_open",
        "remote_specified",
        "syn_acked",
        "fin_queued",
        "fin_sent",
        "recv_pending",
        "eof_queued",
        "rtx_timer",
        "tw_timer",
        "user_timer",
    }
)


def field_sort(name: str) -> Any:
    if name in BOOL_FIELDS:
        return z3.BoolSort()
    if name == "state":
        return z3.BitVecSort(STATE_BITS)
    if name == "retries":
        return z3.BitVecSort(RETRY_BITS)
    return z3.BitVecSort(32)


def fresh_tcb(prefix: str) -> SymTcb:
    """A TCB of unconstrained symbols named `prefix.field`."""
    return SymTcb(**{n: z3.Const(f"{prefix}.{n}", field_sort(n)) for n in TCB_FIELDS})


def _merge(cond: B, then: Any, other: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Field-wise if-then-else (fields equal on both sides stay as they are)."""
    merged = {}
    for name in names:
        a, b = getattr(then, name), getattr(other, name)
        merged[name] = a if a.eq(b) else z3.If(cond, a, b)
    return merged


def ite(cond: B, then: SymTcb, other: SymTcb) -> SymTcb:
    return SymTcb(**_merge(cond, then, other, TCB_FIELDS))


def empty_tcb(state: State = S.CLOSED, passive_open: bool = False) -> SymTcb:
    """`deleted()` / `listening()`: every field at its default."""
    zero = bv(0)
    return SymTcb(
        state=state_val(state),
        passive_open=z3.BoolVal(passive_open),
        remote_specified=z3.BoolVal(False),
        iss=zero,
        irs=zero,
        snd_una=zero,
        syn_acked=z3.BoolVal(False),
        snd_nxt=zero,
        snd_wnd=zero,
        snd_wl1=zero,
        snd_wl2=zero,
        max_snd_wnd=zero,
        rcv_nxt=zero,
        rcv_up=zero,
        snd_buf=zero,
        fin_queued=z3.BoolVal(False),
        fin_sent=z3.BoolVal(False),
        rcv_buf=zero,
        recv_pending=z3.BoolVal(False),
        eof_queued=z3.BoolVal(False),
        rtx_timer=z3.BoolVal(False),
        tw_timer=z3.BoolVal(False),
        user_timer=z3.BoolVal(False),
        retries=bv(0, RETRY_BITS),
    )


@dataclass(frozen=True)
class SymSeg:
    """`model.segment.Segment` with the payload as its length."""

    syn: B
    ack_bit: B
    fin: B
    rst: B
    psh: B
    urg: B
    seq: BV
    ack: BV
    wnd: BV
    length: BV
    up: BV

    @property
    def seg_len(self) -> BV:
        return self.length + z3.If(self.syn, bv(1), bv(0)) + z3.If(self.fin, bv(1), bv(0))


SEG_FIELDS = tuple(f.name for f in fields(SymSeg))
SEG_BOOLS = ("syn", "ack_bit", "fin", "rst", "psh", "urg")


def fresh_seg(prefix: str) -> SymSeg:
    return SymSeg(
        **{
            n: z3.Bool(f"{prefix}.{n}") if n in SEG_BOOLS else z3.BitVec(f"{prefix}.{n}", 32)
            for n in SEG_FIELDS
        }
    )


def make_seg(
    *,
    syn: bool = False,
    ack_bit: bool = False,
    fin: bool | B = False,
    rst: bool = False,
    seq: BV,
    ack: BV | None = None,
    wnd: BV | None = None,
    length: BV | None = None,
) -> SymSeg:
    false = z3.BoolVal(False)
    return SymSeg(
        syn=z3.BoolVal(syn),
        ack_bit=z3.BoolVal(ack_bit),
        fin=fin if isinstance(fin, z3.BoolRef) else z3.BoolVal(fin),
        rst=z3.BoolVal(rst),
        psh=false,
        urg=false,
        seq=seq,
        ack=bv(0) if ack is None else ack,
        wnd=bv(0) if wnd is None else wnd,
        length=bv(0) if length is None else length,
        up=bv(0),
    )


class OutKind(Enum):
    EMIT = "emit"
    SIGNAL = "signal"
    DELIVER = "deliver"
    TIMER_SET = "timer-set"
    TIMER_CANCEL = "timer-cancel"


@dataclass(frozen=True)
class SymOut:
    """One output, happening when `guard` holds."""

    guard: B
    kind: OutKind
    segment: SymSeg | None = None
    reply: Reply | None = None
    length: BV | None = None
    timer: TimerKind | None = None


class Outs:
    """The output list of one `step`, in program order, with guards."""

    def __init__(self) -> None:
        self.items: list[SymOut] = []

    def emit(self, pc: B, segment: SymSeg) -> None:
        self.items.append(SymOut(pc, OutKind.EMIT, segment=segment))

    def signal(self, pc: B, reply: Reply) -> None:
        self.items.append(SymOut(pc, OutKind.SIGNAL, reply=reply))

    def deliver(self, pc: B, length: BV) -> None:
        self.items.append(SymOut(pc, OutKind.DELIVER, length=length))

    def timer(self, pc: B, kind: OutKind, timer: TimerKind) -> None:
        self.items.append(SymOut(pc, kind, timer=timer))

    def emitted(self, start: int = 0) -> list[tuple[B, SymSeg]]:
        """The segments emitted (from output `start` on), with their guards."""
        return [(o.guard, o.segment) for o in self.items[start:] if o.segment is not None]

    def signalled(self, reply: Reply) -> B:
        return z3.Or(z3.BoolVal(False), *[o.guard for o in self.items if o.reply is reply])


# ----------------------------------------------------- derived values


class Endpoint:
    """The relation for one configuration; `pc` threads the path condition."""

    def __init__(self, cfg: Config) -> None:
        check_encoded(cfg)
        self.cfg = cfg
        self.out = Outs()
        self.domain: list[B] = []

    # --- tcb.py

    def rcv_wnd(self, t: SymTcb) -> BV:
        """`Tcb.rcv_wnd`: RCV.WND, the buffer space left (up to 2**30, unclamped)."""
        w = bv(self.cfg.rcv_wnd)
        return z3.If(z3.ULE(t.rcv_buf, w), w - t.rcv_buf, bv(0))

    def wnd_field(self, t: SymTcb) -> BV:
        """`Tcb.wnd_field`: SEG.WND of every segment we build with a window, RCV.WND
        clamped to the 16-bit field (no window scaling).  RCV.WND never exceeds the
        configured buffer, so below 65536 the clamp is the identity and is left out
        (the proofs' formulas stay as they were)."""
        if self.cfg.rcv_wnd <= WND_FIELD_MAX:
            return self.rcv_wnd(t)
        return umin(self.rcv_wnd(t), bv(WND_FIELD_MAX))

    @staticmethod
    def syn_unacked(t: SymTcb) -> B:
        return z3.And(z3.Not(is_state(t.state, S.CLOSED, S.LISTEN)), z3.Not(t.syn_acked))

    @staticmethod
    def fin_acked(t: SymTcb) -> B:
        return z3.And(t.fin_sent, t.snd_una == t.snd_nxt)

    def in_flight(self, t: SymTcb) -> BV:
        one, zero = bv(1), bv(0)
        fin_out = z3.And(t.fin_sent, z3.Not(self.fin_acked(t)))
        return (
            (t.snd_nxt - t.snd_una)
            - z3.If(self.syn_unacked(t), one, zero)
            - z3.If(fin_out, one, zero)
        )

    def unsent(self, t: SymTcb) -> BV:
        flight = self.in_flight(t)
        return z3.If(z3.ULE(flight, t.snd_buf), t.snd_buf - flight, bv(0))

    # --- sending.py: segment forms

    def ack_segment(self, t: SymTcb) -> SymSeg:
        return make_seg(ack_bit=True, seq=t.snd_nxt, ack=t.rcv_nxt, wnd=self.wnd_field(t))

    def syn_segment(self, t: SymTcb) -> SymSeg:
        return make_seg(syn=True, seq=t.iss, wnd=self.wnd_field(t))

    def syn_ack_segment(self, t: SymTcb) -> SymSeg:
        return make_seg(syn=True, ack_bit=True, seq=t.iss, ack=t.rcv_nxt, wnd=self.wnd_field(t))

    @staticmethod
    def reset_for(seg: SymSeg) -> SymSeg:
        with_ack = make_seg(rst=True, seq=seg.ack)
        without = make_seg(rst=True, ack_bit=True, seq=bv(0), ack=seg.seq + seg.seg_len)
        return select_seg(seg.ack_bit, with_ack, without)

    def abort_reset(self, t: SymTcb) -> SymSeg:
        if self.cfg.rule("abort-rst-ack"):
            return make_seg(rst=True, ack_bit=True, seq=t.snd_nxt, ack=t.rcv_nxt)
        return make_seg(rst=True, seq=t.snd_nxt)

    # --- sending.py: timers

    def arm(self, pc: B, t: SymTcb, kind: TimerKind) -> SymTcb:
        self.out.timer(pc, OutKind.TIMER_SET, kind)
        return t.with_timer(kind, z3.Or(t.timer(kind), pc))

    def disarm(self, pc: B, t: SymTcb, kind: TimerKind) -> SymTcb:
        self.out.timer(z3.And(pc, t.timer(kind)), OutKind.TIMER_CANCEL, kind)
        return t.with_timer(kind, z3.And(t.timer(kind), z3.Not(pc)))

    def disarm_all(self, pc: B, t: SymTcb) -> SymTcb:
        for kind in sorted(TimerKind, key=lambda k: k.value):
            t = self.disarm(pc, t, kind)
        return t

    def arm_retransmission(self, pc: B, t: SymTcb) -> SymTcb:
        t = self.arm(pc, t, TimerKind.RETRANSMISSION)
        if self.cfg.user_timeout:
            t = self.arm(z3.And(pc, z3.Not(t.user_timer)), t, TimerKind.USER)
        return t

    def disarm_retransmission(self, pc: B, t: SymTcb) -> SymTcb:
        return self.disarm(pc, self.disarm(pc, t, TimerKind.RETRANSMISSION), TimerKind.USER)

    def delete_tcb(self, pc: B, t: SymTcb) -> SymTcb:
        self.disarm_all(pc, t)
        return ite(pc, empty_tcb(), t)

    def listening(self, pc: B, t: SymTcb) -> SymTcb:
        """`listening()`: a fresh LISTEN TCB that keeps the remote socket, if named."""
        fresh = replace(empty_tcb(S.LISTEN, passive_open=True), remote_specified=t.remote_specified)
        return ite(pc, fresh, t)

    # --- sending.py: transmit

    def transmit(self, pc: B, t: SymTcb) -> SymTcb:
        """`transmit`: text as far as the window allows, then the FIN."""
        pc = z3.And(pc, is_state(t.state, *SENDING_STATES))
        sent: B = z3.BoolVal(False)
        going: B = pc
        mss = bv(self.cfg.mss)
        for i in range(LOOP_BOUND + 1):
            unsent = self.unsent(t)
            flight = self.in_flight(t)
            usable = z3.If(z3.ULE(flight, t.snd_wnd), t.snd_wnd - flight, bv(0))
            size = umin(umin(unsent, mss), usable)
            going = z3.And(going, unsent != 0, size != 0)
            if i == LOOP_BOUND:
                self.domain.append(z3.Not(going))
                break
            seg = make_seg(
                ack_bit=True, seq=t.snd_nxt, ack=t.rcv_nxt, wnd=self.wnd_field(t), length=size
            )
            self.out.emit(going, seg)
            t = ite(going, replace(t, snd_nxt=t.snd_nxt + size), t)
            sent = z3.Or(sent, going)
        unsent_left = self.unsent(t) != 0
        fin_now = z3.And(pc, t.fin_queued, z3.Not(t.fin_sent), z3.Not(unsent_left))
        fin = make_seg(ack_bit=True, fin=True, seq=t.snd_nxt, ack=t.rcv_nxt, wnd=self.wnd_field(t))
        self.out.emit(fin_now, fin)
        t = ite(fin_now, replace(t, snd_nxt=t.snd_nxt + 1, fin_sent=z3.BoolVal(True)), t)
        sent = z3.Or(sent, fin_now)
        need_timer = z3.And(pc, z3.Or(sent, unsent_left), z3.Not(t.rtx_timer))
        return self.arm_retransmission(need_timer, t)

    def front_of_queue(self, t: SymTcb) -> tuple[B, SymSeg]:
        """`front_of_queue`: (whether there is one, the segment)."""
        syn = select_seg(
            is_state(t.state, S.SYN_SENT), self.syn_segment(t), self.syn_ack_segment(t)
        )
        flight = self.in_flight(t)
        length = umin(flight, bv(self.cfg.mss))
        fin_behind: B = z3.BoolVal(False)
        if self.cfg.rule("retransmit-collapse"):
            fin_behind = z3.And(t.fin_sent, z3.Not(self.fin_acked(t)), length == flight)
        text = make_seg(
            ack_bit=True,
            fin=fin_behind,
            seq=t.snd_una,
            ack=t.rcv_nxt,
            wnd=self.wnd_field(t),
            length=length,
        )
        fin = make_seg(
            ack_bit=True, fin=True, seq=t.snd_nxt - 1, ack=t.rcv_nxt, wnd=self.wnd_field(t)
        )
        has_syn = self.syn_unacked(t)
        has_text = flight != 0
        has_fin = z3.And(t.fin_sent, z3.Not(self.fin_acked(t)))
        seg = select_seg(has_syn, syn, select_seg(has_text, text, fin))
        return z3.Or(has_syn, has_text, has_fin), seg


def select_seg(cond: B, a: SymSeg, b: SymSeg) -> SymSeg:
    return SymSeg(**_merge(cond, a, b, SEG_FIELDS))


def retry_limit(cfg: Config, t: SymTcb) -> BV:
    limit = z3.If(
        Endpoint.syn_unacked(t), bv(cfg.synack_retries, RETRY_BITS), bv(cfg.retries, RETRY_BITS)
    )
    return z3.If(is_state(t.state, S.SYN_SENT), bv(cfg.syn_retries, RETRY_BITS), limit)


def synchronized(t: SymTcb) -> B:
    return is_state(t.state, *SYNCHRONIZED)


# -------------------------------------------- concrete values in and out


def tcb_to_sym(tcb: Tcb) -> SymTcb:
    """A concrete TCB as z3 constants (text as its length)."""
    values: dict[str, Any] = {}
    for name in TCB_FIELDS:
        if name == "state":
            values[name] = state_val(tcb.state)
        elif name == "retries":
            values[name] = bv(tcb.retries, RETRY_BITS)
        elif name in ("snd_buf", "rcv_buf"):
            values[name] = bv(len(getattr(tcb, name)))
        elif name.endswith("_timer"):
            values[name] = z3.BoolVal(TIMER_OF_FIELD[name] in tcb.timers)
        elif name in BOOL_FIELDS:
            values[name] = z3.BoolVal(getattr(tcb, name))
        else:
            values[name] = bv(getattr(tcb, name))
    return SymTcb(**values)


TIMER_OF_FIELD = {
    "rtx_timer": TimerKind.RETRANSMISSION,
    "tw_timer": TimerKind.TIME_WAIT,
    "user_timer": TimerKind.USER,
}


def seg_to_sym(seg: Segment) -> SymSeg:
    return SymSeg(
        syn=z3.BoolVal(seg.syn),
        ack_bit=z3.BoolVal(seg.has_ack),
        fin=z3.BoolVal(seg.fin),
        rst=z3.BoolVal(seg.rst),
        psh=z3.BoolVal(Flags.PSH in seg.flags),
        urg=z3.BoolVal(seg.urg),
        seq=bv(seg.seq),
        ack=bv(seg.ack),
        wnd=bv(seg.wnd),
        length=bv(len(seg.payload)),
        up=bv(seg.up),
    )


Evaluate = Callable[[Any], Any]


def value_of(expr: Any, evaluate: Evaluate) -> int | bool:
    v = evaluate(expr)
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    return int(v.as_long())


def tcb_view(t: SymTcb, evaluate: Evaluate) -> dict[str, object]:
    """The TCB's fields as Python values, in the terms of `project_tcb`."""
    view: dict[str, object] = {}
    for name in TCB_FIELDS:
        value = value_of(getattr(t, name), evaluate)
        view[name] = STATES[int(value)] if name == "state" else value
    return view


def project_tcb(tcb: Tcb) -> dict[str, object]:
    """A concrete TCB as the encoding sees it: text as lengths, timers as flags."""
    view: dict[str, object] = {}
    for name in TCB_FIELDS:
        if name in ("snd_buf", "rcv_buf"):
            view[name] = len(getattr(tcb, name))
        elif name.endswith("_timer"):
            view[name] = TIMER_OF_FIELD[name] in tcb.timers
        else:
            view[name] = getattr(tcb, name)
    return view


def seg_view(seg: SymSeg, evaluate: Evaluate) -> tuple[object, ...]:
    return tuple(value_of(getattr(seg, n), evaluate) for n in SEG_FIELDS)


def project_seg(seg: Segment) -> tuple[object, ...]:
    return (
        seg.syn,
        seg.has_ack,
        seg.fin,
        seg.rst,
        Flags.PSH in seg.flags,
        seg.urg,
        seg.seq,
        seg.ack,
        seg.wnd,
        len(seg.payload),
        seg.up,
    )


def outputs_view(outs: Outs, evaluate: Evaluate) -> list[tuple[object, ...]]:
    """The outputs whose guard holds, in order, as comparable tuples."""
    view: list[tuple[object, ...]] = []
    for o in outs.items:
        if not value_of(o.guard, evaluate):
            continue
        if o.kind is OutKind.EMIT:
            assert o.segment is not None
            view.append(("emit", seg_view(o.segment, evaluate)))
        elif o.kind is OutKind.DELIVER:
            view.append(("deliver", value_of(o.length, evaluate)))
        elif o.kind is OutKind.SIGNAL:
            view.append(("signal", o.reply))
        else:
            view.append((o.kind.value, o.timer))
    return view


def project_outputs(outputs: tuple[Output, ...]) -> list[tuple[object, ...]]:
    view: list[tuple[object, ...]] = []
    for o in outputs:
        if isinstance(o, Emit):
            view.append(("emit", project_seg(o.segment)))
        elif isinstance(o, Deliver):
            view.append(("deliver", len(o.data)))
        elif isinstance(o, Signal):
            view.append(("signal", o.reply))
        elif isinstance(o, TimerSet):
            view.append((OutKind.TIMER_SET.value, o.kind))
        elif isinstance(o, TimerCancel):
            view.append((OutKind.TIMER_CANCEL.value, o.kind))
    return view
