"""The fuzz loop: hypothesis drives examples at a target until a budget runs out.

Each batch is one hypothesis run.  A divergence fails the example, and
hypothesis shrinks it to a minimal case; the shrunk case becomes the
representative of a group of findings (findings.group_key: its root
cause), and later divergences of a known group are kept as drawn, as
members, so that the search goes on to *other* causes.  A target that
breaks down is recorded on the campaign wherever it happens (hypothesis
may swallow the exception while shrinking), and ends the campaign.  Generation is
steered toward (state x event class) pairs no example has exercised yet: one
action in nine is drawn from the classes still missing in the target's
state, a list frozen for each batch so that shrinking replays stay
faithful.  (hypothesis.target did this before, but its hill climbing took
half the campaign's time.)  The example database is project-local, so a
finding is tried first on the next run.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky, FlakyFailure

from synack.harness.common import exits
from synack.harness.fuzz import findings
from synack.harness.fuzz.fuzz import (
    Action,
    Example,
    Opening,
    Run,
    action_strategy,
    allowed_variations,
    openings,
    run_example,
)
from synack.harness.fuzz.oracle import EVENT_CLASSES
from synack.harness.fuzz.targets.base import Target, TargetError, Traits
from synack.model.config import Config
from synack.model.types import State

BATCH = 200
MAX_ACTIONS = 16
GIVE_UP = 8
"""Actions aimed at a (state x event class) pair before it counts as out of reach
(a call the target cannot make there, say)."""
SHRINK_LIMIT = 90.0
"""Seconds spent shrinking one finding (attempts with real-time waits are slow);
after that, or once the budget is spent, the smallest failure so far is kept."""


def _steerable(campaign: Campaign, waits: bool) -> dict[State, tuple[str, ...]]:
    """For each state, the event classes to steer toward: not yet exercised there, and
    not aimed at in vain `GIVE_UP` times; waits only where they are wanted and cheap."""
    steerable: dict[State, tuple[str, ...]] = {}
    for state in State:
        steerable[state] = tuple(
            cls
            for cls in EVENT_CLASSES
            if (waits or not cls.startswith("timeout:"))
            and campaign.coverage[f"{state} {cls}"] == 0
            and campaign.steered[f"{state} {cls}"] < GIVE_UP
        )
    return steerable


class _Diverged(Exception):
    def __init__(self, run: Run) -> None:
        super().__init__("divergence")
        self.run = run


@dataclass
class Finding:
    run: Run
    flaky: bool = False  # the shrunk case did not reproduce on the final replay
    seconds: float = 0.0  # into the campaign when it was found (shrinking included)
    # Its group (findings.group_key) and the group's other members: divergent
    # examples of the same kind met later, each a new Run.signature(), kept as
    # drawn (not shrunk); `examples` counts every divergent example of the group.
    key: tuple[object, ...] = ()
    members: list[Finding] = field(default_factory=list)
    examples: int = 1


@dataclass
class Campaign:
    """Counters for the progress bar and the summary."""

    examples: int = 0
    segments: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    coverage: Counter[str] = field(default_factory=Counter)
    allowed: Counter[str] = field(default_factory=Counter)  # RFC-allowed variations by id
    anomalies: list[str] = field(default_factory=list)
    stopped: str = ""
    failure: str = ""  # the target broke down (what it found before is kept)
    unreproduced: int = 0
    steered: Counter[str] = field(default_factory=Counter)  # actions aimed at each pair
    shrinking: bool = False  # a finding is being shrunk right now

    @property
    def rate(self) -> float:
        return self.examples / self.seconds if self.seconds else 0.0


@dataclass
class _Shrink:
    since: float = 0.0  # when this batch's first failure was seen
    cut: bool = False  # shrinking was stopped (time), not exhausted


def fuzz(
    target: Target,
    cfg: Config,
    max_examples: int,
    budget: float,
    first_seed: int,
    database: Path | None,
    key: str,
    progress: Callable[[Campaign], None] | None = None,
    waits: bool = True,
    max_findings: int = 20,
    on_run: Callable[[Run], None] | None = None,
    shrink_time: float = SHRINK_LIMIT,
) -> Campaign:
    """Run up to `max_examples` examples or `budget` seconds, whichever ends first.

    `shrink_time`: seconds spent shrinking each finding; 0 keeps the first
    divergent example as it is (a quick triage of a stack with many findings).
    """
    with first_signal_stops() as interrupted:
        plan = _Plan(
            target, cfg, max_examples, budget, first_seed, database, key, progress, waits,
            max_findings, on_run, interrupted, shrink_time,
        )  # fmt: skip
        return _Fuzzer(plan).run()


@contextlib.contextmanager
def first_signal_stops() -> Iterator[threading.Event]:
    """The first Ctrl-C or SIGTERM ends the work gracefully (findings are kept and
    saved); a second one aborts (KeyboardInterrupt, or `exits.Terminated`).

    A KeyboardInterrupt raised inside hypothesis can land in one of its gc
    callbacks and be swallowed, so the signal only sets a flag that the
    loop polls (and `exits.note_signal` remembers it for the exit status:
    130 or 143).  Nested uses share what was asked: a signal noted before
    the block counts as the first.
    """
    interrupted = threading.Event()
    if exits.stop_requested():
        interrupted.set()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_signal(signum: int, frame: object) -> None:
        if interrupted.is_set() or exits.stop_requested():  # asked before, here or outside
            exits.note_signal(signum)
            raise exits.Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        exits.note_signal(signum)
        interrupted.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class _Plan:
    """What the campaign was asked to do (the arguments of `fuzz`)."""

    target: Target
    cfg: Config
    max_examples: int
    budget: float
    first_seed: int
    database: Path | None
    key: str
    progress: Callable[[Campaign], None] | None
    waits: bool
    max_findings: int
    on_run: Callable[[Run], None] | None
    interrupted: threading.Event
    shrink_time: float


class _Fuzzer:
    """One campaign: batches of hypothesis examples until the plan's end."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.campaign = Campaign()
        self.known = _Groups(plan.target.traits)
        self.start = time.monotonic()
        db = plan.database
        self.db = DirectoryBasedExampleDatabase(str(db)) if db is not None else None
        self.batch_number = 0
        self.slow = plan.target.traits.slow_waits
        self.failing: list[Run] = []  # this batch's divergent runs (the shrinker's attempts)
        self.steering: dict[State, tuple[str, ...]] = {}
        self.shrink = _Shrink()

    def run(self) -> Campaign:
        campaign = self.campaign
        while campaign.examples < self.plan.max_examples:
            stopped = self._stop_reason()
            if stopped:
                campaign.stopped = stopped
                break
            if not self._batch():
                break
        campaign.seconds = self._elapsed()
        return campaign

    def _elapsed(self) -> float:
        return time.monotonic() - self.start

    def _stop_reason(self) -> str:
        plan = self.plan
        if plan.interrupted.is_set():
            return "interrupted"
        if self._elapsed() >= plan.budget:
            return f"budget of {plan.budget:g} s"
        if len(self.campaign.findings) >= plan.max_findings:
            return f"{plan.max_findings} findings"
        return ""

    def _batch(self) -> bool:
        """One hypothesis run; False when the target broke down (the campaign ends)."""
        campaign, failing = self.campaign, self.failing
        failing.clear()
        self.shrink.cut = False
        # Frozen for the batch, so that shrinking replays mean the same examples.
        self.steering.clear()
        self.steering.update(_steerable(campaign, self.plan.waits and not self.slow))
        recorded = len(campaign.findings)
        try:
            self._test()()
        except _Diverged as found:
            self._record(found.run, False)
        except TargetError as exc:
            campaign.stopped = campaign.failure = campaign.failure or f"the target failed: {exc}"
        except (FlakyFailure, Flaky):
            # The shrunk case did not fail again on hypothesis's final replay (a
            # real stack's timing, or shrinking cut short, whose replay passes by
            # design): keep the smallest failure seen.
            if failing:
                self._record(self._smallest(), not self.shrink.cut)
        except Exception:
            if not campaign.failure:
                raise  # not the target's breakdown: an internal error
        finally:
            campaign.shrinking = False
        if campaign.failure:
            # Whatever hypothesis raised or swallowed: a broken-down target ends the
            # campaign.  A divergence seen before it is kept (it is not replayed).
            if failing and len(campaign.findings) == recorded:
                self._record(self._smallest(), True)
            return False
        return True

    def _smallest(self) -> Run:
        return min(self.failing, key=lambda r: (len(r.example.actions), len(r.steps)))

    def _record(self, run: Run, flaky: bool) -> None:
        _record(self.campaign, self.known, Finding(run, flaky, self._elapsed()))

    def _test(self) -> Callable[[], None]:
        plan = self.plan

        def probe(opening: Opening, data: st.DataObject) -> None:
            self._probe(opening, data)  # a plain function: hypothesis marks it with the digest

        remaining = plan.max_examples - self.campaign.examples
        test = settings(
            max_examples=min(BATCH, remaining),
            database=self.db,
            deadline=None,
            derandomize=False,
            print_blob=False,
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.reuse, Phase.generate]
            + ([Phase.shrink] if plan.shrink_time > 0 else []),
        )(seed(plan.first_seed + self.batch_number)(given(openings(), st.data())(probe)))
        test.hypothesis.inner_test._hypothesis_internal_add_digest = plan.key.encode()  # type: ignore[attr-defined]
        self.batch_number += 1
        return test

    def _skip(self) -> bool:
        """Whether this attempt passes at once: out of examples or time, or shrinking
        stopped (every attempt passes then, so hypothesis stops shrinking)."""
        plan, campaign, failing = self.plan, self.campaign, self.failing
        if campaign.failure:
            return True  # the target broke down: every later attempt stops at once
        now = time.monotonic()
        out_of_time = now - self.start >= plan.budget or plan.interrupted.is_set()
        if failing and (out_of_time or now - self.shrink.since > plan.shrink_time):
            self.shrink.cut = True
            return True
        return not failing and (out_of_time or campaign.examples >= plan.max_examples)

    def _probe(self, opening: Opening, data: st.DataObject) -> None:
        if self._skip():
            return
        plan, campaign, failing = self.plan, self.campaign, self.failing
        example = Example(opening.role, opening.peer_iss, opening.target_iss, ())
        length = data.draw(st.integers(1, MAX_ACTIONS), label="actions")
        aimed_at: list[str] = []

        def source(state: State, index: int) -> Action | None:
            if index >= length:
                return None
            strategy = action_strategy(state, plan.waits, self.slow, self.steering[state])
            action, aimed = data.draw(strategy)
            if aimed is not None:
                aimed_at.append(f"{state} {aimed}")
            return action

        try:
            run = run_example(plan.target, example, plan.cfg, source=source)
        except TargetError as exc:
            # Recorded here, whatever hypothesis does with the exception next
            # (shrinking, its flaky-failure handling and final replay may swallow it).
            campaign.stopped = campaign.failure = f"the target failed: {exc}"
            raise
        if plan.on_run is not None:
            plan.on_run(run)
        if not failing:
            self._count(run, aimed_at)
        if run.divergence is not None and not self.known.passes(campaign, run, failing):
            if not failing:
                self.shrink.since = time.monotonic()
                campaign.shrinking = True
                self._report()
            failing.append(run)
            raise _Diverged(run)

    def _count(self, run: Run, aimed_at: list[str]) -> None:
        campaign = self.campaign
        campaign.examples += 1
        campaign.segments += run.segments
        campaign.anomalies.extend(run.anomalies)
        campaign.coverage.update(run.coverage)
        campaign.allowed.update(allowed_variations(run))
        campaign.steered.update(aimed_at)
        campaign.seconds = self._elapsed()
        self._report()

    def _report(self) -> None:
        if self.plan.progress is not None:
            self.plan.progress(self.campaign)


class _Groups:
    """The groups found so far (findings.group_key): a divergence of a known group
    is listed as one of its members, not shrunk, and the search goes on for others."""

    def __init__(self, traits: Traits) -> None:
        self.traits = traits
        self.groups: dict[tuple[object, ...], Finding] = {}
        self.seen: dict[tuple[object, ...], set[tuple[object, ...]]] = {}
        self.shrinking: tuple[Run, tuple[object, ...]] | None = None

    def key(self, run: Run) -> tuple[object, ...]:
        return findings.group_key(run, self.traits)

    def passes(self, campaign: Campaign, run: Run, failing: list[Run]) -> bool:
        """Whether the divergent `run` is passed over rather than failed (and shrunk).

        While a failure is shrunk, only its own group fails, so the shrunk case
        stays what was found.  Otherwise a known group's divergence passes: the
        first of each `Run.signature()` is listed as a member of the group.
        """
        key = self.key(run)
        if failing:
            if self.shrinking is None or self.shrinking[0] is not failing[0]:
                self.shrinking = (failing[0], self.key(failing[0]))
            return key != self.shrinking[1]
        if key not in self.groups:
            return False
        self.join(key, Finding(run, False, campaign.seconds))
        return True

    def join(self, key: tuple[object, ...], finding: Finding) -> None:
        """Count `finding` in the known group `key`; the first of its signature is a member."""
        group = self.groups[key]
        group.examples += 1
        if finding.run.signature() not in self.seen[key]:
            self.seen[key].add(finding.run.signature())
            finding.key = key
            group.members.append(finding)


def _record(campaign: Campaign, known: _Groups, finding: Finding) -> None:
    """A shrunk (or smallest) failure: a new group, or a member of a known one."""
    key = known.key(finding.run)
    if key in known.groups:
        known.join(key, finding)
        return
    finding.key = key
    known.groups[key] = finding
    known.seen[key] = {finding.run.signature()}
    campaign.findings.append(finding)
