"""The fuzzer's oracle: the set of model states consistent with what a target did.

The target is a black box that made choices the model leaves open: its
ISNs, which timers fired when, and (for a real stack) the windows it
advertises.  The oracle therefore keeps every model TCB that explains
the whole observation so far.  For each action it steps every candidate
through every allowed interleaving of timer firings with the action,
and keeps the results whose emitted segments (and, where the target
reports them, replies and delivered text) equal what was observed.  An
empty set is a divergence: no behaviour the specification allows
produces what the target did.

Learned rather than predicted: the ISS (taken from the target's SYN or
SYN,ACK when a candidate picks one) and, for real stacks, RCV.WND (the
window each target segment advertises becomes the candidate's RCV.WND).
What is learned about the target lives in its `Candidate`, never in the
`Config`: a candidate holds the model TCB with the Config as configured,
and the Config the model steps it under (`Candidate.config`) is made from
the configured one and what was learned, right before the step.

RFC-allowed alternatives are tried in lockstep, only when nothing else
explains a step: a profile rule the RFCs permit too (`ALLOWED_RULES`, a
challenge ACK under rfc9293, say) switched on for the candidate (and kept
on: a stack that sends challenge ACKs sends them every time), and the
latitude of `LATITUDE` (a tail-loss probe, a duplicate ACK for an
out-of-order segment, one ACK for a SYN,ACK's SYN and text).  A step so
explained is no divergence; `Oracle.allowed` names what explained it
(ids of `RFC_ALLOWED`), for the report to count as RFC-allowed variations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import product

from synack.harness.fuzz.targets.base import Observation, Traits, UserOutput
from synack.model.config import ALLOWED_RULES, MAX_RCV_WND, RULE_IDS, Config
from synack.model.endpoint import step as model_step
from synack.model.segment import Flags, Segment
from synack.model.seq import seq_sub
from synack.model.tcb import Tcb
from synack.model.types import (
    SYNCHRONIZED,
    Deliver,
    Emit,
    Event,
    OpenCall,
    SegmentArrives,
    Signal,
    State,
    Timeout,
    TimerKind,
)
from synack.model.values import cached_hash

_PSH = int(Flags.PSH)

step = functools.lru_cache(maxsize=1 << 14)(model_step)
"""`model.step`, remembered: the collect hint and the timer plans step the same
candidates with the same events (TCBs and events are hashable values)."""
MAX_CANDIDATES = 256
SPONTANEOUS_FIRINGS = 2
"""Retransmission timeouts a real target may go through during one action."""
NEW_ISS_STATES = (State.CLOSED, State.LISTEN, State.TIME_WAIT)


def same_segment(expected: Segment, observed: Segment, exact_windows: bool) -> bool:
    """Equal as far as the model predicts: PSH is never compared, SEG.WND maybe not."""
    if (expected.bits | _PSH) != (observed.bits | _PSH):
        return False
    if expected.seq != observed.seq or expected.payload != observed.payload:
        return False
    if expected.has_ack and expected.ack != observed.ack:
        return False
    if expected.urg and expected.up != observed.up:
        return False
    return not exact_windows or expected.wnd == observed.wnd


def event_class(event: Event | None) -> str:
    """The coverage label of an event: segment flags (+text), call, or timer."""
    if isinstance(event, SegmentArrives):
        seg = event.segment
        return _segment_class(seg.bits & ~_PSH, bool(seg.payload))
    if isinstance(event, Timeout):
        return f"timeout:{event.kind.value}"
    if isinstance(event, OpenCall):
        return "open:active" if event.active else "open:passive"
    if event is None:
        return "idle"
    return "call:" + type(event).__name__.removesuffix("Call").lower()


@functools.cache
def _segment_class(bits: int, text: bool) -> str:
    flags = Flags(bits)
    return (str(flags) if flags in KNOWN_FLAGS else "odd-flags") + ("+text" if text else "")


KNOWN_FLAGS = frozenset(
    {
        Flags.SYN,
        Flags.SYN | Flags.ACK,
        Flags.ACK,
        Flags.FIN | Flags.ACK,
        Flags.RST,
        Flags.RST | Flags.ACK,
        Flags(0),
    }
)
EVENT_CLASSES = (
    *(str(f) for f in sorted(KNOWN_FLAGS, key=int)),
    "ACK+text",
    "FIN,ACK+text",
    "odd-flags",
    "call:send",
    "call:receive",
    "call:close",
    "call:abort",
    "timeout:retransmission",
    "timeout:time-wait",
)
"""The event classes coverage is reported over (x the eleven states)."""


@cached_hash
@dataclass(frozen=True, slots=True)
class Candidate:
    """A model state the target may be in, and what the oracle learned of the target.

    `tcb` carries the Config as configured; the facts learned from the target
    are kept beside it and applied only to step it (`stepped`).  The
    candidates of one oracle share that Config, so two are equal exactly when
    the TCBs they step are (`then` keeps no learned RCV.WND equal to the
    configured one).
    """

    tcb: Tcb
    rcv_wnd: int | None = None
    """The receive buffer the target's windows show (None: the configured `cfg.rcv_wnd`)."""
    allowed: frozenset[str] = frozenset()
    """RFC-allowed rules (`ALLOWED_RULES`) the target was seen to follow, on top of the
    configured ones: a stack that sends challenge ACKs sends them every time."""
    disabled: frozenset[str] = frozenset()
    """Profile rules the target was seen not to follow (linux `synack-no-text`)."""
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def config(self, flipped: tuple[str, ...] = ()) -> Config:
        """The Config the model steps this candidate under: the configured one with what was
        learned applied, and each per-segment choice named in `flipped` (`Traits.varies`)
        taken the other way."""
        cfg = self.tcb.cfg
        if self.rcv_wnd is None and not self.allowed and not self.disabled and not flipped:
            return cfg
        return _configured(cfg, self.rcv_wnd, self.allowed, self.disabled, flipped)

    def stepped(self) -> Tcb:
        """The TCB the model steps for this candidate (`config()` in place of its Config)."""
        cfg = self.config()
        return self.tcb if cfg is self.tcb.cfg else _with_config(self.tcb, cfg)

    def then(self, tcb: Tcb, rcv_wnd: int | None = None) -> tuple[Candidate, Tcb]:
        """The candidate in the model state `tcb` (stepped under `config()`), with what was
        learned before and the receive buffer `rcv_wnd` if this step showed one; and the
        TCB the model steps for it next (`tcb` itself unless `rcv_wnd` changes its Config)."""
        cfg = self.tcb.cfg
        configured = tcb if tcb.cfg is cfg else _with_config(tcb, cfg)
        if rcv_wnd is None:
            return Candidate(configured, self.rcv_wnd, self.allowed, self.disabled), tcb
        learned = None if rcv_wnd == cfg.rcv_wnd else rcv_wnd
        successor = Candidate(configured, learned, self.allowed, self.disabled)
        return successor, successor.stepped()


@functools.lru_cache(maxsize=1 << 14)
def _with_config(tcb: Tcb, cfg: Config) -> Tcb:
    """`tcb` under `cfg`, remembered: the model's successors recur (`step` remembers them)."""
    return replace(tcb, cfg=cfg)


@functools.lru_cache(maxsize=1 << 10)
def _configured(
    cfg: Config,
    rcv_wnd: int | None,
    allowed: frozenset[str],
    disabled: frozenset[str],
    flipped: tuple[str, ...],
) -> Config:
    """`Candidate.config`, remembered: a handful of learned windows and rules recur."""
    changes: dict[str, object] = {name: not getattr(cfg, name) for name in flipped}
    if rcv_wnd is not None:
        changes["rcv_wnd"] = rcv_wnd
    if allowed:
        changes["allowed"] = cfg.allowed | allowed
    if disabled:
        changes["disabled"] = cfg.disabled | disabled
    return cfg.with_(**changes)


@dataclass(frozen=True, slots=True)
class Path:
    """One way a candidate could have produced an observation (TCBs as the model stepped
    them, `Candidate.stepped`; a per-segment choice taken the other way is not kept)."""

    before: Tcb
    after: Tcb
    segments: tuple[Segment, ...]
    user: tuple[UserOutput, ...]
    labels: tuple[str, ...]  # coverage: "STATE event-class" for each event on the path


@dataclass(frozen=True, slots=True)
class Divergence:
    """No consistent state allows the observation."""

    observed: Observation
    expected: tuple[Path, ...]  # what each candidate would have done with no timer firing
    candidates: tuple[str, ...]  # the states the target could have been in
    # Whether the target reports the user's replies (Traits.user_outputs); if
    # not, only delivered text is compared, and only that is shown.
    replies: bool = True

    def told(self, user: tuple[UserOutput, ...]) -> tuple[UserOutput, ...]:
        """The part of `user` that is compared: every notification, or delivered text only."""
        return user if self.replies else tuple(o for o in user if isinstance(o, Deliver))

    def alike(self) -> tuple[Path, ...]:
        """The expected paths whose segments are the observed ones (PSH aside)."""
        seen = Divergence.unpushed(self.observed.segments)
        return tuple(p for p in self.expected if Divergence.unpushed(p.segments) == seen)

    def summary(self) -> str:
        """The difference, in segments and in user notifications, expected vs observed.

        When the segments are what the specification allows, the difference is
        in what the application was told, and that comes first.
        """
        text, user = Divergence.segments_text, Divergence.user_text
        seen = self.observed.segments
        # Equal but for SEG.WND (which str() leaves out): show the windows.
        windows = any(
            Divergence.unpushed(seen, windows=False)
            == Divergence.unpushed(p.segments, windows=False)
            for p in self.expected
        )
        wanted = " | ".join(sorted({text(p.segments, windows) for p in self.expected}))
        segments = f"observed {text(seen, windows)}; the specification allows {wanted}"
        alike = self.alike()
        told = user(self.told(self.observed.user))
        said = sorted({user(self.told(p.user)) for p in alike or self.expected})
        if told in said:
            return segments
        notified = f"told {told}; the specification says {' | '.join(said)}"
        if alike:
            return f"{notified} (segments as the specification allows: {text(seen, windows)})"
        return f"{segments}; {notified}"

    @staticmethod
    def unpushed(segments: tuple[Segment, ...], windows: bool = True) -> tuple[Segment, ...]:
        """The segments as compared: PSH cleared (and SEG.WND zeroed unless `windows`)."""
        return tuple(
            replace(s, flags=Flags(s.bits & ~_PSH), wnd=s.wnd if windows else 0) for s in segments
        )

    @staticmethod
    def segments_text(segments: tuple[Segment, ...], windows: bool = False) -> str:
        shown = (str(s) + (f"<WND={s.wnd}>" if windows else "") for s in segments)
        return " ".join(shown) or "nothing"

    @staticmethod
    def user_text(user: tuple[UserOutput, ...]) -> str:
        """Notifications as the application saw them: RFC strings quoted, text by its size."""
        parts = [
            f'"{o.reply.value}"' if isinstance(o, Signal) else f"delivered {len(o.data)} octets"
            for o in user
        ]
        return ", ".join(parts) or "nothing"


def _user_matches(path: tuple[UserOutput, ...], seen: tuple[UserOutput, ...], full: bool) -> bool:
    if full:
        return path == seen
    # Targets without reply reporting still report delivered text.
    return tuple(o for o in path if isinstance(o, Deliver)) == tuple(
        o for o in seen if isinstance(o, Deliver)
    )


class Oracle:
    """Tracks the candidate TCBs of one target connection."""

    def __init__(self, tcb: Tcb, traits: Traits) -> None:
        self.traits = traits
        self.held: dict[Candidate, Tcb] = {}  # each candidate and the TCB the model steps
        self.candidates: frozenset[Tcb] = frozenset()  # the stepped TCBs: `held`'s values
        self._hold({Candidate(tcb): tcb})
        self.allowed: tuple[str, ...] = ()  # RFC_ALLOWED ids that explained the last step

    def _hold(self, held: dict[Candidate, Tcb]) -> None:
        """Keep `held` (each candidate with `Candidate.stepped()`), the first
        MAX_CANDIDATES of them in `_order`."""
        if len(held) > MAX_CANDIDATES:
            held = dict(sorted(held.items(), key=lambda item: _order(item[1]))[:MAX_CANDIDATES])
        self.held = held
        self.candidates = frozenset(held.values())

    # ------------------------------------------------------------ views

    def reference(self) -> Tcb:
        """One candidate, chosen deterministically, to aim the next segment at."""
        return min(self.candidates, key=_order)

    def states(self) -> tuple[str, ...]:
        return tuple(sorted({str(t.state) for t in self.candidates}))

    def expected_segments(self, event: Event | None) -> int:
        """How many segments the target should emit (no timer firing): the collect hint."""
        most = 0
        for tcb in self.candidates:
            if event is not None:
                _, outputs = step(tcb, event)
                most = max(most, sum(isinstance(o, Emit) for o in outputs))
        return most

    # ---------------------------------------------------------- advance

    def advance(
        self, event: Event | None, observed: Observation, waited: bool = False
    ) -> tuple[Divergence | None, frozenset[str]]:
        """Apply `event` (None: time only) and keep the candidates that explain `observed`.

        Returns the divergence (or None) and the coverage labels of the
        surviving paths.  When only RFC-allowed alternatives explain the
        step, `self.allowed` names them (it is empty otherwise).
        """
        syn_seq = next((s.seq for s in observed.segments if s.syn and not s.rst), None)
        self.allowed = ()
        survivors, labels, allowed = self._explained(event, observed, syn_seq, waited, False)
        if not survivors:
            survivors, labels, allowed = self._explained(event, observed, syn_seq, waited, True)
        if not survivors:
            expected = tuple(
                p
                for candidate, tcb in sorted(self.held.items(), key=lambda item: _order(item[1]))
                for p in self._paths(candidate, tcb, event, syn_seq, waited=False, firings=False)
            )
            return (
                Divergence(observed, expected, self.states(), self.traits.user_outputs),
                frozenset(),
            )
        self._hold(survivors)
        self.allowed = tuple(sorted(allowed))
        return None, frozenset(labels)

    def _explained(
        self,
        event: Event | None,
        observed: Observation,
        syn_seq: int | None,
        waited: bool,
        lenient: bool,
    ) -> tuple[dict[Candidate, Tcb], set[str], set[str]]:
        """The candidates' successors that explain `observed`, their coverage labels and
        (`lenient`: by RFC-allowed alternatives only) the allowances that explained them.

        Of the ways RFC-allowed alternatives explain a step only the simplest
        count (the fewest allowances): a tail-loss probe explains it with or
        without a challenge-ACK rule switched on, and the rule is no part of it.
        """
        found: dict[tuple[str, ...], tuple[dict[Candidate, Tcb], set[str]]] = {}
        for candidate, tcb in self.held.items():
            starts: Iterable[tuple[Candidate, Tcb, str]] = ((candidate, tcb, ""),)
            if lenient:
                starts = _allowed_alternatives(candidate, tcb, event)
            for start, stepped, rule_id in starts:
                for path in self._paths(start, stepped, event, syn_seq, waited):
                    used = self._allowance(path, event, observed, rule_id, lenient)
                    if used is None:
                        continue
                    survivors, labels = found.setdefault(used, ({}, set()))
                    survivors.update(self._learn(start, path, observed))
                    labels.update(path.labels)
        if not found:
            return {}, set(), set()
        fewest = min(len(used) for used in found)
        simplest = [(used, kept) for used, kept in found.items() if len(used) == fewest]
        return (
            {c: t for _, (survivors, _) in simplest for c, t in survivors.items()},
            {label for _, (_, labels) in simplest for label in labels},
            {i for used, _ in simplest for i in used},
        )

    def _allowance(
        self,
        path: Path,
        event: Event | None,
        observed: Observation,
        rule_id: str,
        lenient: bool,
    ) -> tuple[str, ...] | None:
        """What makes `path` explain `observed`: () the model itself, RFC_ALLOWED ids an
        alternative; None: nothing does."""
        if self._matches(path, observed):
            return (rule_id,) if rule_id else ()
        if not lenient or not _user_matches(path.user, observed.user, self.traits.user_outputs):
            return None
        for latitude_id, latitude in LATITUDE_CHECKS:
            if latitude(path, event, observed.segments, self.traits.exact_windows):
                return (rule_id, latitude_id) if rule_id else (latitude_id,)
        return None

    def _matches(self, path: Path, observed: Observation) -> bool:
        if len(path.segments) != len(observed.segments):
            return False
        exact = self.traits.exact_windows
        if not all(
            same_segment(e, o, exact) for e, o in zip(path.segments, observed.segments, strict=True)
        ):
            return False
        return _user_matches(path.user, observed.user, self.traits.user_outputs)

    def _learn(
        self, candidate: Candidate, path: Path, observed: Observation
    ) -> tuple[tuple[Candidate, Tcb], ...]:
        """`candidate` after `path` (with the TCB the model steps for it next), RCV.WND taken
        from the target's last segment (real stacks choose their windows): the receive
        buffer it shows is learned.

        When the application reads text and the target says nothing, either
        view of RFC 9293 3.8.6.2.2 may hold: the right edge of the window stays
        where the target last advertised it (the receiver's SWS avoidance;
        Linux keeps testing against rcv_wup + rcv_wnd until it sends again), or
        RCV.WND is at once RCV.BUFF - RCV.USER, the space the read freed (the
        model itself).  Both stay candidates until the target's next segment
        says which.
        """
        tcb = path.after
        if self.traits.exact_windows or tcb.state in (State.CLOSED, State.LISTEN):
            return (candidate.then(tcb),)
        # A RST's window field means nothing (Linux sends 0): only other segments say.
        advertised = [s for s in observed.segments if not s.rst]
        buffer = tcb.cfg.rcv_wnd  # as stepped: what was learned so far
        if advertised:
            window = advertised[-1].wnd + len(tcb.rcv_buf)
            kept: tuple[tuple[Candidate, Tcb], ...] = ()
        elif len(tcb.rcv_buf) < len(path.before.rcv_buf) and tcb.rcv_nxt == path.before.rcv_nxt:
            window = buffer - (len(path.before.rcv_buf) - len(tcb.rcv_buf))
            kept = (candidate.then(tcb),)  # the window reopened as the application read
        else:
            return (candidate.then(tcb),)
        if window == buffer:
            return (candidate.then(tcb),)
        # The advertised part is at most 65535, the unread text comes on top.
        return (*kept, candidate.then(tcb, min(window, MAX_RCV_WND)))

    def _paths(
        self,
        candidate: Candidate,
        tcb: Tcb,
        event: Event | None,
        syn_seq: int | None,
        waited: bool,
        firings: bool = True,
    ) -> Iterator[Path]:
        """Every interleaving of allowed timer firings with `event`, from `tcb` (the TCB
        the model steps for `candidate`) and under each other value of the choices the
        target makes afresh per text segment (`Traits.varies`)."""
        if syn_seq is not None and tcb.state in NEW_ISS_STATES:
            tcb = replace(tcb, iss_pool=(syn_seq,))
        varies: tuple[str, ...] = ()
        if isinstance(event, SegmentArrives) and event.segment.payload:
            varies = self.traits.varies
        for before, after in self._timer_plans(tcb, event, waited, firings):
            events = (*before, *([event] if event is not None else []), *after)
            yield _run(tcb, events)
            for name in varies:
                path = _run(replace(tcb, cfg=candidate.config((name,))), events)
                yield replace(path, before=tcb, after=replace(path.after, cfg=tcb.cfg))

    def _timer_plans(
        self, tcb: Tcb, event: Event | None, waited: bool, firings: bool
    ) -> Iterator[tuple[tuple[Event, ...], tuple[Event, ...]]]:
        if not firings:
            yield (), ()
            return
        kinds = sorted(tcb.timers, key=lambda k: k.value)
        if waited:
            if self.traits.spontaneous_timers:
                # Real time: any number (up to 3) of retransmissions and the user timeout.
                real = [Timeout(k) for k in kinds if k is not TimerKind.TIME_WAIT]
                for count in range(4):
                    for seq in product(real, repeat=count):
                        yield tuple(seq), ()
                return
            if not kinds:
                yield (), ()
            for kind in kinds:
                yield (Timeout(kind),), ()
            return
        yield (), ()
        if self.traits.spontaneous_timers and TimerKind.RETRANSMISSION in tcb.timers:
            # Real time passes during an action too: a retransmission timeout
            # (200 ms at least on Linux) may expire before or after it, and
            # twice when the fuzzer was held up (a loaded machine) for longer.
            fire = (Timeout(TimerKind.RETRANSMISSION),)
            for times in range(1, SPONTANEOUS_FIRINGS + 1):
                yield fire * times, ()
                if event is not None:
                    yield (), fire * times
            if event is not None:
                yield fire, fire


def _run(tcb: Tcb, events: Sequence[Event]) -> Path:
    segments: list[Segment] = []
    user: list[UserOutput] = []
    labels: list[str] = []
    start = tcb
    for event in events:
        labels.append(f"{tcb.state} {event_class(event)}")
        tcb, outputs = step(tcb, event)
        for o in outputs:
            if isinstance(o, Emit):
                segments.append(o.segment)
            elif isinstance(o, Signal | Deliver):
                user.append(o)
    return Path(start, tcb, tuple(segments), tuple(user), tuple(labels))


def _order(tcb: Tcb) -> tuple[str, int, int, int, int]:
    return (tcb.state.value, tcb.rcv_nxt, tcb.snd_nxt, len(tcb.rcv_buf), tcb.cfg.rcv_wnd)


# ------------------------------------------------- RFC-allowed alternatives


def _allowed_alternatives(
    candidate: Candidate, tcb: Tcb, event: Event | None
) -> Iterator[tuple[Candidate, Tcb, str]]:
    """`candidate` (whose model steps `tcb`) as is, then as following each RFC-allowed
    behaviour the model could take instead: each with the TCB the model steps, and the id.

    A profile rule the RFCs permit (`ALLOWED_RULES`) that the candidate's
    profile lacks is switched on, and stays on: a stack that sends challenge
    ACKs sends them every time.  Where the profile takes no text from a
    SYN,ACK (linux `synack-no-text`), the RFC's own processing that ACKs SYN
    and text together is the alternative (`combined-synack-ack`).
    """
    yield candidate, tcb, ""
    cfg = tcb.cfg  # as stepped: the configured rules and those learned
    alternatives = [
        (replace(candidate, allowed=candidate.allowed | {rule_id}), rule_id)
        for rule_id in sorted(ALLOWED_RULES - RULE_IDS[cfg.profile] - cfg.allowed)
    ]
    if _carries_more(event) and tcb.state is State.SYN_SENT and cfg.rule("synack-no-text"):
        disabled = candidate.disabled | {"synack-no-text"}
        alternatives.append((replace(candidate, disabled=disabled), "combined-synack-ack"))
    for alternative, rule_id in alternatives:
        yield alternative, alternative.stepped(), rule_id


def _carries_more(event: Event | None) -> bool:
    """A SYN,ACK that carries text or FIN as well."""
    if not isinstance(event, SegmentArrives):
        return False
    seg = event.segment
    return seg.syn and seg.has_ack and not seg.rst and (bool(seg.payload) or seg.fin)


def _interleaved(
    expected: tuple[Segment, ...],
    observed: tuple[Segment, ...],
    extra: Callable[[Segment], bool],
    most: int,
    exact: bool,
) -> bool:
    """`observed` is `expected` in order with one to `most` segments more, each of them one
    for which `extra` holds."""
    more = len(observed) - len(expected)
    return 0 < more <= most and _merged(expected, observed, extra, exact)


def _merged(
    expected: tuple[Segment, ...],
    observed: tuple[Segment, ...],
    extra: Callable[[Segment], bool],
    exact: bool,
) -> bool:
    if not observed:
        return not expected
    seg, rest = observed[0], observed[1:]
    if (
        expected
        and same_segment(expected[0], seg, exact)
        and _merged(expected[1:], rest, extra, exact)
    ):
        return True
    return len(rest) >= len(expected) and extra(seg) and _merged(expected, rest, extra, exact)


def _sent_text(tcb: Tcb) -> bytes:
    """The text `tcb` has sent and not had acknowledged: [SND.UNA, SND.NXT) less SYN and FIN."""
    if tcb.state not in SYNCHRONIZED or not tcb.syn_acked:
        return b""
    return tcb.snd_buf[: seq_sub(tcb.snd_nxt, tcb.snd_una) - tcb.fin_sent]


def _resends_sent_text(seg: Segment, tcb: Tcb) -> bool:
    """`seg` carries octets `tcb` has sent and not had acknowledged, at their own numbers."""
    if seg.syn or seg.rst or seg.fin or not seg.has_ack or not seg.payload:
        return False
    sent = _sent_text(tcb)
    offset = seq_sub(seg.seq, tcb.snd_una)
    return (
        seg.ack == tcb.rcv_nxt
        and offset + len(seg.payload) <= len(sent)
        and sent[offset : offset + len(seg.payload)] == seg.payload
    )


def _tail_loss_probe(
    path: Path, event: Event | None, observed: tuple[Segment, ...], exact: bool
) -> bool:
    """RFC 8985 7: text already sent is sent again before the retransmission timeout
    (a probe, from the state before the step or after it), around what the model sends."""

    def probe(seg: Segment) -> bool:
        return _resends_sent_text(seg, path.before) or _resends_sent_text(seg, path.after)

    return _interleaved(path.segments, observed, probe, len(observed), exact)


def _out_of_order_dup_ack(
    path: Path, event: Event | None, observed: tuple[Segment, ...], exact: bool
) -> bool:
    """RFC 5681 4.2 (RFC 9293 3.8.6.3): a zero-length segment not at RCV.NXT in a
    synchronized state may get one immediate duplicate ACK more than the model sends."""
    if not isinstance(event, SegmentArrives) or path.before.state not in SYNCHRONIZED:
        return False
    seg = event.segment
    if seg.payload or seg.syn or seg.fin or seg.rst or seg.seq == path.before.rcv_nxt:
        return False
    after = path.after
    dup_ack = Segment(Flags.ACK, after.snd_nxt, after.rcv_nxt, after.wnd_field)
    return _interleaved(
        path.segments, observed, lambda s: same_segment(dup_ack, s, exact), 1, exact
    )


Latitude = Callable[[Path, Event | None, tuple[Segment, ...], bool], bool]
LATITUDE_CHECKS: tuple[tuple[str, Latitude], ...] = (
    ("tail-loss-probe", _tail_loss_probe),
    ("out-of-order-dup-ack", _out_of_order_dup_ack),
)
"""The latitude of `LATITUDE` (model/config.py) checked on what the target sent, by id;
`combined-synack-ack` is an alternative processing (`_allowed_alternatives`)."""
