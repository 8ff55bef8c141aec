"""State fingerprints name states by content, the same in every process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields

from synack.harness.check.fingerprint import canonical, fingerprint
from synack.model.scenarios import get
from synack.model.system import successors

CODE = """
from synack.harness.check.fingerprint import fingerprint
from synack.model.scenarios import get
from synack.model.system import successors
system = get("lifecycle").build()
frontier = [system.initial]
for _ in range(6):
    frontier = [s for state in frontier for _, s in successors(system, state)]
print(",".join(fingerprint(s) for s in frontier[:50]))
from synack.model import Tcb, TimerKind
two = Tcb(timers=frozenset({TimerKind.RETRANSMISSION, TimerKind.USER, TimerKind.TIME_WAIT}))
print(fingerprint(two), repr(two.timers))
"""


def _in_process(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_fingerprints_do_not_depend_on_the_hash_seed() -> None:
    runs = [_in_process(seed).splitlines() for seed in ("1", "2", "3", "12345")]
    states = {run[0] for run in runs}
    assert len(states) == 1 and runs[0][0]
    set_prints = {run[1].split()[0] for run in runs}
    assert len(set_prints) == 1, "a TCB with several timers must fingerprint alike"
    # ...although the set itself iterates differently from seed to seed:
    assert len({run[1].split(maxsplit=1)[1] for run in runs}) > 1


def test_fingerprints_tell_states_apart_and_match_equality() -> None:
    system = get("handshake").build()
    states = {s for _, s in successors(system, system.initial)}
    states |= {t for s in states for _, t in successors(system, s)}
    prints = {fingerprint(s) for s in states}
    assert len(prints) == len(states)
    for state in states:
        assert fingerprint(state) == fingerprint(type(state)(**_init_fields(state)))


def _init_fields(state: object) -> dict[str, object]:
    return {f.name: getattr(state, f.name) for f in fields(state) if f.init}  # type: ignore[arg-type]


def test_timer_sets_are_encoded_sorted() -> None:
    system = get("handshake").build()
    state = next(s for _, s in successors(system, system.initial))
    assert "TimerKind.RETRANSMISSION" in canonical(state)
