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
SHRINK_LIMIT = 90.0
"""Seconds spent shrinking one finding (attempts with real-time waits are slow);
after that, or once the budget is spent, the smallest failure so far is kept."""
"""Actions aimed at a (state x event class) pair before it counts as out of reach
(a call the target cannot make there, say)."""


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
        return _fuzz(
            target, cfg, max_examples, budget, first_seed, database, key, progress, waits,
            max_findings, on_run, interrupted, shrink_time,
        )  # fmt: skip


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


def _fuzz(
    target: Target,
    cfg: Config,
    max_examples: int,
    budget: float,
    first_seed: int,
    database: Path | None,
    key: str,
    progress: Callable[[Campaign], None] | None,
    waits: bool,
    max_findings: int,
    on_run: Callable[[Run], None] | None,
    interrupted: threading.Event,
    shrink_time: float,
) -> Campaign:
    campaign = Campaign()
    known = _Groups(target.traits)
    start = time.monotonic()
    db = DirectoryBasedExampleDatabase(str(database)) if database is not None else None
    batch_number = 0
    slow = target.traits.slow_waits
    failing: list[Run] = []  # this batch's divergent runs (the shrinker's attempts)
    steering: dict[State, tuple[str, ...]] = {}
    shrink = _Shrink()
    while campaign.examples < max_examples:
        if interrupted.is_set():
            campaign.stopped = "interrupted"
            break
        if time.monotonic() - start >= budget:
            campaign.stopped = f"budget of {budget:g} s"
            break
        if len(campaign.findings) >= max_findings:
            campaign.stopped = f"{max_findings} findings"
            break
        failing.clear()
        shrink.cut = False
        remaining = max_examples - campaign.examples
        # Frozen for the batch, so that shrinking replays mean the same examples.
        steering.clear()
        steering.update(_steerable(campaign, waits and not slow))

        def probe(opening: Opening, data: st.DataObject) -> None:
            if campaign.failure:
                return  # the target broke down: every later attempt stops at once
            now = time.monotonic()
            out_of_time = now - start >= budget or interrupted.is_set()
            if failing and (out_of_time or now - shrink.since > shrink_time):
                shrink.cut = True  # every attempt passes now: hypothesis stops shrinking
                return
            if not failing and (out_of_time or campaign.examples >= max_examples):
                return  # out of examples or time: the rest of the batch is skipped
            example = Example(opening.role, opening.peer_iss, opening.target_iss, ())
            length = data.draw(st.integers(1, MAX_ACTIONS), label="actions")

            aimed_at: list[str] = []

            def source(state: State, index: int) -> Action | None:
                if index >= length:
                    return None
                action, aimed = data.draw(action_strategy(state, waits, slow, steering[state]))
                if aimed is not None:
                    aimed_at.append(f"{state} {aimed}")
                return action

            try:
                run = run_example(target, example, cfg, source=source)
            except TargetError as exc:
                # Recorded here, whatever hypothesis does with the exception next
                # (shrinking, its flaky-failure handling and final replay may swallow it).
                campaign.stopped = campaign.failure = f"the target failed: {exc}"
                raise
            if on_run is not None:
                on_run(run)
            if not failing:
                campaign.examples += 1
                campaign.segments += run.segments
                campaign.anomalies.extend(run.anomalies)
                campaign.coverage.update(run.coverage)
                campaign.allowed.update(allowed_variations(run))
                campaign.steered.update(aimed_at)
                campaign.seconds = time.monotonic() - start
                if progress is not None:
                    progress(campaign)
            if run.divergence is not None and not known.passes(campaign, run, failing):
                if not failing:
                    shrink.since = time.monotonic()
                    campaign.shrinking = True
                    if progress is not None:
                        progress(campaign)
                failing.append(run)
                raise _Diverged(run)

        test = settings(
            max_examples=min(BATCH, remaining),
            database=db,
            deadline=None,
            derandomize=False,
            print_blob=False,
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.reuse, Phase.generate]
            + ([Phase.shrink] if shrink_time > 0 else []),
        )(seed(first_seed + batch_number)(given(openings(), st.data())(probe)))
        test.hypothesis.inner_test._hypothesis_internal_add_digest = key.encode()  # type: ignore[attr-defined]
        batch_number += 1
        recorded = len(campaign.findings)
        try:
            test()
        except _Diverged as found:
            _record(campaign, known, Finding(found.run, False, time.monotonic() - start))
        except TargetError as exc:
            campaign.stopped = campaign.failure = campaign.failure or f"the target failed: {exc}"
        except (FlakyFailure, Flaky):
            # The shrunk case did not fail again on hypothesis's final replay (a
            # real stack's timing, or shrinking cut short, whose replay passes by
            # design): keep the smallest failure seen.
            if failing:
                smallest = min(failing, key=lambda r: (len(r.example.actions), len(r.steps)))
                when = time.monotonic() - start
                _record(campaign, known, Finding(smallest, not shrink.cut, when))
        except Exception:
            if not campaign.failure:
                raise  # not the target's breakdown: an internal error
        finally:
            campaign.shrinking = False
        if campaign.failure:
            # Whatever hypothesis raised or swallowed: a broken-down target ends the
            # campaign.  A divergence seen before it is kept (it is not replayed).
            if failing and len(campaign.findings) == recorded:
                smallest = min(failing, key=lambda r: (len(r.example.actions), len(r.steps)))
                _record(campaign, known, Finding(smallest, True, time.monotonic() - start))
            break
    campaign.seconds = time.monotonic() - start
    return campaign


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
