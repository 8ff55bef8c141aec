"""Bad input to every command: the documented exit status, one line, no traceback.

A table of cases, each the installed `synack` run in a child process in
a folder of its own, with a bounded timeout: bad flags, bad paths, bad
replay files (malformed JSON, wrong shapes, huge values, deep nesting,
binary junk, an empty file, a folder, a missing file) and outputs that
fail after the work (/dev/full).  Each case asserts its exit status
(docs/exit-status.md), that stderr is one line (or, after the work, ends
with the line saying where the report went), that nothing says
"Traceback", and that no file appears where none should.  The figures
(inputs tried, tracebacks, hangs, silent passes) are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synack.harness.check.counterexample import run, step_to_json, system_to_json
from synack.harness.check.explore import Limits, explore
from synack.harness.common.exits import reset_signals_in_child
from synack.harness.fuzz import casefile
from synack.harness.fuzz.conformance import CHECKS
from synack.harness.fuzz.fuzz import action_to_json, draw_action, example_to_json
from synack.harness.fuzz.fuzzing import MAX_ACTIONS
from synack.harness.fuzz.oracle import EVENT_CLASSES
from synack.model import State
from synack.model.scenarios import get as get_scenario
from synack.properties.catalogue import CATALOGUE, Expect, Property

SYNACK = Path(sys.executable).parent / "synack"
TIMEOUT = 60.0
USAGE, VERDICT, OK = 2, 1, 0

NETWORK = {"capacity": 2, "dup": 1, "loss": True, "reorder": True}
COUNTEREXAMPLE: dict[str, Any] = {
    "scenario": "handshake",
    "profile": "rfc9293",
    "variant": None,
    "network": NETWORK,
    "eager_timers": False,
    "property": "no-deadlock",
    "steps": [],
}
"""A valid check counterexample (the empty path: nothing to reproduce, exit 0)."""

FINDING: dict[str, Any] = {
    "kind": "synack-fuzz-finding",
    "version": 1,
    "target": "model",
    "profile": "rfc9293",
    "example": {"role": "active", "peer_iss": 1, "target_iss": 2, "actions": [{"do": "wait"}]},
    "divergence": {"step": 0, "event": "SYN", "observed": []},
}
"""A valid fuzz finding (the model does not diverge from itself: exit 0)."""


def _with(base: dict[str, Any], *path_and_value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the value at the key path replaced (_DELETE deletes)."""
    *path, value = path_and_value
    data: dict[str, Any] = json.loads(json.dumps(base))
    here = data
    for key in path[:-1]:
        here = here[key]
    if value is _DELETE:
        del here[path[-1]]
    else:
        here[path[-1]] = value
    return data


_DELETE = object()
ACTIONS = ("example", "actions")
INJECT = {"do": "inject", "flags": "ACK", "seq": {"kind": "exact"}, "ack": {"kind": "exact"}}
DELIVER = {
    "kind": "deliver",
    "actor": "network",
    "direction": "c2s",
    "incarnation": 0,
    "segment": {"flags": "SYN", "seq": 1},
}

FILES: dict[str, str | bytes] = {
    "regular.txt": "not a folder\n",
    "empty.json": "",
    "blank.json": "  \n",
    "junk.bin": bytes(range(256)) * 8,
    "truncated.json": '{"property": "no-deadlock", "steps": [',
    "list.json": "[1, 2, 3]",
    "string.json": '"a string"',
    "nan.json": '{"property": NaN, "steps": []}',
    "deep-list.json": "[" * 100_000 + "]" * 100_000,
    "deep-object.json": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "bigint.json": '{"steps": ' + "9" * 5000 + "}",
    "huge.json": '{"junk": "' + "x" * (9 * 2**20) + '"}',
    # check counterexamples
    "cx.json": json.dumps(COUNTEREXAMPLE),
    "cx-steps-text.json": json.dumps(_with(COUNTEREXAMPLE, "steps", "abc")),
    "cx-steps-null.json": json.dumps(_with(COUNTEREXAMPLE, "steps", None)),
    "cx-step-list.json": json.dumps(_with(COUNTEREXAMPLE, "steps", [[1]])),
    "cx-property-list.json": json.dumps(_with(COUNTEREXAMPLE, "property", ["x"])),
    "cx-property-unknown.json": json.dumps(_with(COUNTEREXAMPLE, "property", "nope")),
    "cx-no-property.json": json.dumps(_with(COUNTEREXAMPLE, "property", _DELETE)),
    "cx-no-network.json": json.dumps(_with(COUNTEREXAMPLE, "network", _DELETE)),
    "cx-network-list.json": json.dumps(_with(COUNTEREXAMPLE, "network", [1])),
    "cx-network-extra.json": json.dumps(_with(COUNTEREXAMPLE, "network", {**NETWORK, "x": 1})),
    "cx-capacity-huge.json": json.dumps(_with(COUNTEREXAMPLE, "network", "capacity", 10**9)),
    "cx-capacity-bool.json": json.dumps(_with(COUNTEREXAMPLE, "network", "capacity", True)),
    "cx-dup-negative.json": json.dumps(_with(COUNTEREXAMPLE, "network", "dup", -1)),
    "cx-scenario-unknown.json": json.dumps(_with(COUNTEREXAMPLE, "scenario", "nope")),
    "cx-variant-number.json": json.dumps(_with(COUNTEREXAMPLE, "variant", 7)),
    "cx-many-steps.json": json.dumps(
        _with(COUNTEREXAMPLE, "steps", [{"kind": "call", "actor": "client"}] * 100_000)
    ),
    "cx-step-kind.json": json.dumps(_with(COUNTEREXAMPLE, "steps", [{"kind": "teleport"}])),
    "cx-step-actor.json": json.dumps(
        _with(COUNTEREXAMPLE, "steps", [{"kind": "call", "actor": "alien"}])
    ),
    "cx-step-not-enabled.json": json.dumps(_with(COUNTEREXAMPLE, "steps", [DELIVER])),
    "cx-seq-negative.json": json.dumps(
        _with(COUNTEREXAMPLE, "steps", [_with(DELIVER, "segment", "seq", -1)])
    ),
    "cx-seq-huge.json": json.dumps(
        _with(COUNTEREXAMPLE, "steps", [_with(DELIVER, "segment", "seq", 2**64)])
    ),
    "cx-payload-huge.json": json.dumps(
        _with(COUNTEREXAMPLE, "steps", [_with(DELIVER, "segment", "payload", "00" * 70_000)])
    ),
    "cx-payload-not-hex.json": json.dumps(
        _with(COUNTEREXAMPLE, "steps", [_with(DELIVER, "segment", "payload", "zz")])
    ),
    "cx-flags-unknown.json": json.dumps(
        _with(COUNTEREXAMPLE, "steps", [_with(DELIVER, "segment", "flags", "BOGUS")])
    ),
    "cx-segment-text.json": json.dumps(_with(COUNTEREXAMPLE, "steps", [{**DELIVER, "segment": 1}])),
    # fuzz findings
    "finding.json": json.dumps(FINDING),
    "finding-agent.json": json.dumps(_with(FINDING, "target", "agent:touch PWNED")),
    "finding-python.json": json.dumps(_with(FINDING, "target", "python:os:system")),
    "finding-target-list.json": json.dumps(_with(FINDING, "target", ["model"])),
    "finding-target-newline.json": json.dumps(_with(FINDING, "target", "model\nPWNED")),
    "finding-target-unknown.json": json.dumps(_with(FINDING, "target", "nope")),
    "finding-no-divergence.json": json.dumps(_with(FINDING, "divergence", _DELETE)),
    "finding-divergence-text.json": json.dumps(_with(FINDING, "divergence", "x")),
    "finding-no-example.json": json.dumps(_with(FINDING, "example", _DELETE)),
    "finding-actions-list.json": json.dumps(_with(FINDING, *ACTIONS, [[1]])),
    "finding-actions-text.json": json.dumps(_with(FINDING, *ACTIONS, "abc")),
    "finding-too-many-actions.json": json.dumps(
        _with(FINDING, *ACTIONS, [{"do": "wait"}] * (MAX_ACTIONS + 1))
    ),
    "finding-send-huge.json": json.dumps(
        _with(FINDING, *ACTIONS, [{"do": "call", "call": "send", "size": 10**8}])
    ),
    "finding-inject-huge.json": json.dumps(_with(FINDING, *ACTIONS, [{**INJECT, "size": 10**8}])),
    "finding-urgent-huge.json": json.dumps(_with(FINDING, *ACTIONS, [{**INJECT, "up": 10**6}])),
    "finding-near-huge.json": json.dumps(
        _with(FINDING, *ACTIONS, [{**INJECT, "seq": {"kind": "window", "n": 2**40}}])
    ),
    "finding-pick-unknown.json": json.dumps(
        _with(FINDING, *ACTIONS, [{**INJECT, "seq": {"kind": "anywhere"}}])
    ),
    "finding-flags-unknown.json": json.dumps(
        _with(FINDING, *ACTIONS, [{**INJECT, "flags": "BOGUS"}])
    ),
    "finding-call-unknown.json": json.dumps(
        _with(FINDING, *ACTIONS, [{"do": "call", "call": "rm -rf"}])
    ),
    "finding-do-unknown.json": json.dumps(_with(FINDING, *ACTIONS, [{"do": "fly"}])),
    "finding-iss-negative.json": json.dumps(_with(FINDING, "example", "peer_iss", -1)),
    "finding-iss-float.json": json.dumps(_with(FINDING, "example", "peer_iss", 1.5)),
    "finding-role-unknown.json": json.dumps(_with(FINDING, "example", "role", "both")),
    "finding-profile-unknown.json": json.dumps(_with(FINDING, "profile", "nope")),
    "finding-profile-list.json": json.dumps(_with(FINDING, "profile", ["rfc9293"])),
    "finding-version-2.json": json.dumps(_with(FINDING, "version", 2)),
    "finding-observed-text.json": json.dumps(_with(FINDING, "divergence", "observed", "x")),
}


@dataclass(frozen=True)
class Case:
    """`synack ARGV` (IN/ names the inputs folder) and what it must do."""

    argv: tuple[str, ...]
    status: int
    after_work: bool = False
    """The error comes after the work (the output failed): its line ends stderr."""
    creates: tuple[str, ...] = ()
    """What may appear in the case's own folder (first path components)."""
    stdout: str | None = None
    """Standard output goes to this file (e.g. /dev/full) instead of a pipe."""

    @property
    def name(self) -> str:
        return " ".join(self.argv) + (f" >{self.stdout}" if self.stdout else "")


def _bad(*argv: str) -> Case:
    return Case(argv, USAGE)


def _cases() -> Iterator[Case]:
    yield from _global_cases()
    yield from _list_cases()
    yield from _check_cases()
    yield from _prove_cases()
    yield from _fuzz_cases()
    yield from _replay_cases()
    yield from _docs_cases()
    yield from _conformance_cases()


def _global_cases() -> Iterator[Case]:
    yield _bad()
    yield _bad("nonsense")
    yield _bad("--bogus")
    for command in ("check", "prove", "fuzz", "replay", "docs", "conformance", "list"):
        yield _bad(command, "--bogus-flag")


def _list_cases() -> Iterator[Case]:
    yield _bad("list")
    yield _bad("list", "nothing")
    yield Case(("list", "scenarios"), USAGE, after_work=True, stdout="/dev/full")
    yield Case(("list", "targets"), OK)


NUMBERS = ("nan", "inf", "0", "-1", "abc")
OUTPUT_FILES = ("IN/folder", "IN/missing/report.json", "/proc/report.json", "")
OUTPUT_DIRS = ("IN/regular.txt", "/proc/x", "/dev/full", "IN/regular.txt/sub", "")


def _check_cases() -> Iterator[Case]:
    tiny = ("check", "--scenario", "handshake")
    for flag in ("--budget", "--max-states", "--capacity"):
        for value in NUMBERS:
            yield _bad(*tiny, flag, value)
    for value in ("-1", "nan", "abc"):
        yield _bad(*tiny, "--dup", value)
    for flag in ("--scenario", "--profile", "--variant", "--property"):
        yield _bad("check", flag, "nope")
    for name in OUTPUT_FILES:
        yield _bad(*tiny, "--json", name)
    for name in OUTPUT_DIRS:
        yield _bad(*tiny, "--out", name)
    yield Case((*tiny, "--json", "/dev/full"), USAGE, after_work=True, creates=(".synack",))
    yield Case((*tiny, "--json", "-"), USAGE, True, (".synack",), stdout="/dev/full")
    # A verdict stands when the report could not go where asked (it went elsewhere).
    verdict = ("check", "--scenario", "refused", "--variant", "no-give-up")
    yield Case((*verdict, "--json", "/dev/full"), VERDICT, True, (".synack",))
    yield Case((*tiny, "--json", "report.json"), OK, creates=(".synack", "report.json"))


def _prove_cases() -> Iterator[Case]:
    for value in NUMBERS:
        yield _bad("prove", "--timeout", value)
    for flag in ("--property", "--profile", "--variant"):
        yield _bad("prove", flag, "nope")
    for name in OUTPUT_FILES:
        yield _bad("prove", "--json", name)
    lemma = ("prove", "--property", "seq-order-total")
    yield Case((*lemma, "--json", "/dev/full"), USAGE, after_work=True, creates=(".synack",))


def _fuzz_cases() -> Iterator[Case]:
    tiny = ("fuzz", "--target", "model", "--examples", "5", "--budget", "20", "--db", "db")
    for flag in ("--budget", "--examples", "--max-findings"):
        for value in NUMBERS:
            yield _bad(*tiny, flag, value)
    for value in ("nan", "inf", "-1", "abc"):
        yield _bad(*tiny, "--shrink-time", value)
    yield _bad(*tiny, "--seed", "abc")
    for target in ("nope", "agent:", "python:x", "variant:nope", ""):
        yield _bad("fuzz", "--target", target, "--examples", "5")
    yield _bad("fuzz")
    yield _bad(*tiny, "--profile", "nope")
    for name in OUTPUT_FILES:
        yield _bad(*tiny, "--json", name)
    for name in OUTPUT_DIRS:
        yield _bad(*tiny, "--out", name)
        yield _bad("fuzz", "--target", "model", "--examples", "5", "--db", name)
    creates = (".synack", "db", ".hypothesis")  # .hypothesis: hypothesis's own folder
    yield Case((*tiny, "--json", "/dev/full"), USAGE, after_work=True, creates=creates)


def _replay_cases() -> Iterator[Case]:
    yield _bad("replay")
    for name in ("IN/missing.json", "IN/folder", "/dev/full/x", ""):
        yield _bad("replay", name)
    for name in FILES:
        if name.startswith(("cx.json", "finding.json", "regular")):
            continue
        yield _bad("replay", f"IN/{name}")
    yield _bad("replay", "IN/regular.txt")
    yield _bad("replay", "IN/cx.json", "--target", "linux")
    yield _bad("replay", "IN/finding.json", "--target", "nope")
    yield Case(("replay", "IN/cx.json"), OK)
    yield Case(("replay", "IN/finding.json"), OK)
    # The target comes from the command line: then it runs.
    yield Case(("replay", "IN/finding-agent.json", "--target", "model"), OK)
    yield Case(("replay", "IN/cx.json"), USAGE, after_work=True, stdout="/dev/full")


def _docs_cases() -> Iterator[Case]:
    for name in OUTPUT_DIRS:
        yield _bad("docs", "--out", name)
        yield _bad("docs", "--cache", name, "--out", "site")
    yield _bad("docs", "--reports", "IN/regular.txt", "--out", "site")
    for value in ("0", "-1", "abc", "nan"):
        yield _bad("docs", "--jobs", value, "--out", "site")
    yield _bad("docs", "--profile", "nope", "--out", "site")


def _conformance_cases() -> Iterator[Case]:
    quick = ("conformance", "--targets", "model", "--no-fuzz")
    for flag in ("--budget", "--examples"):
        for value in ("nan", "inf", "0", "-1", "abc"):
            yield _bad(*quick, flag, value)
    for value in ("nan", "inf", "-1"):
        yield _bad(*quick, "--shrink-time", value)
    yield _bad(*quick, "--seed", "abc")
    for targets in ("", ",", "nope", "agent:"):
        yield _bad("conformance", "--targets", targets, "--no-fuzz")
    for name in OUTPUT_DIRS:
        yield _bad(*quick, "--out", name)


CASES = tuple(_cases())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "folder").mkdir()
    for name, content in FILES.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


@dataclass
class Outcome:
    case: Case
    status: int | None  # None: it hung (killed after TIMEOUT)
    stdout: str
    stderr: str
    created: list[str]
    seconds: float

    def problems(self) -> list[str]:
        case, found = self.case, []
        if self.status is None:
            return [f"hung for {TIMEOUT:.0f} s"]
        if self.status != case.status:
            found.append(f"exit {self.status}, not {case.status}")
        if "Traceback" in self.stdout + self.stderr:
            found.append("a traceback")
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        if case.status == USAGE and not case.after_work and len(lines) != 1:
            found.append(f"{len(lines)} lines on stderr, not one")
        if case.status == USAGE and not (lines and lines[-1].startswith("synack")):
            found.append("no 'synack ...' line at the end of stderr")
        if case.after_work and not (lines and "cannot write" in lines[-1]):
            found.append("no line saying what could not be written")
        unexpected = [name for name in self.created if name not in case.creates]
        if unexpected:
            found.append(f"created {unexpected}")
        return found


def _run(case: Case, inputs: Path, folder: Path) -> Outcome:
    folder.mkdir()
    start = time.monotonic()
    argv = [arg.replace("IN/", f"{inputs}/") for arg in case.argv]
    stdout = open(case.stdout, "w") if case.stdout else subprocess.PIPE  # noqa: SIM115
    try:
        done = subprocess.run(
            [str(SYNACK), *argv],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
            timeout=TIMEOUT,
            preexec_fn=reset_signals_in_child,
        )
        status: int | None = done.returncode
        out, err = done.stdout or "", done.stderr
    except subprocess.TimeoutExpired as exc:
        status, out, err = None, "", str(exc.stderr or "")
    finally:
        if case.stdout:
            stdout.close()  # type: ignore[union-attr]
    created = sorted({path.relative_to(folder).parts[0] for path in folder.rglob("*")})
    return Outcome(case, status, out, err, created, time.monotonic() - start)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_every_command_refuses_bad_input_in_one_line(inputs: Path, tmp_path: Path) -> None:
    assert SYNACK.exists(), f"the synack console script is not installed at {SYNACK}"
    before = _snapshot(inputs)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(
            pool.map(lambda n: _run(CASES[n], inputs, tmp_path / str(n)), range(len(CASES)))
        )
    failures = [f"{o.case.name}: {'; '.join(o.problems())}" for o in outcomes if o.problems()]
    tracebacks = sum("Traceback" in o.stdout + o.stderr for o in outcomes)
    hangs = sum(o.status is None for o in outcomes)
    silent = sum(o.status == OK and o.case.status != OK for o in outcomes)
    slowest = sorted(outcomes, key=lambda o: -o.seconds)[:3]
    print(
        f"\nbad-input battery: {len(CASES)} inputs tried, {tracebacks} tracebacks, "
        f"{hangs} hangs, {silent} silent passes, {len(failures)} failures; slowest: "
        + ", ".join(f"{o.case.name} {o.seconds:.1f} s" for o in slowest)
    )
    assert _snapshot(inputs) == before, "a case wrote into its inputs"
    assert failures == []


def test_a_replay_file_never_chooses_a_command_to_run(inputs: Path, tmp_path: Path) -> None:
    case = Case(("replay", "IN/finding-agent.json"), USAGE)
    outcome = _run(case, inputs, tmp_path / "case")
    assert outcome.problems() == []
    assert not (tmp_path / "case" / "PWNED").exists()
    # It says what it would run, and how to run it on purpose.
    assert "agent:touch PWNED" in outcome.stderr and "--target" in outcome.stderr


def test_the_bounds_hold_for_everything_the_fuzzer_generates() -> None:
    for check in CHECKS:
        casefile.example(example_to_json(check.example()), check.id)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(list(State)), st.booleans())
def test_the_bounds_hold_for_every_drawn_action(
    data: st.DataObject, state: State, waits: bool
) -> None:
    action, _ = draw_action(data.draw, state, waits, rare_waits=False, steer=EVENT_CLASSES)
    casefile.action(action_to_json(action), "drawn")


VIOLATIONS = [
    (prop, expect)
    for prop in CATALOGUE
    for expect in prop.violated_by
    if expect.scenario != "reuse"
]
"""Every variant's counterexample (reuse's takes ten seconds to find: left out)."""


@pytest.mark.parametrize(
    ("prop", "expect"), VIOLATIONS, ids=[f"{p.name}-{e.variant.value}" for p, e in VIOLATIONS]
)
def test_the_bounds_hold_for_every_counterexample_check_writes(
    prop: Property, expect: Expect
) -> None:
    system = get_scenario(expect.scenario).build(expect.profile, expect.variant)
    limits = Limits(max_memory=Limits.default_memory(), first_violation=True)
    violation = explore(system, (prop,), limits).violations[prop.name]
    header = system_to_json(system, expect.scenario, expect.profile, expect.variant)
    steps = [step_to_json(step) for step in run(system, violation.path)]
    case = {**header, "property": prop.name, "steps": steps}
    casefile.check_counterexample(json.loads(json.dumps(case)))
