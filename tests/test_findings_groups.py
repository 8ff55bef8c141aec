"""Findings grouped by root cause: signatures, representatives, members, the summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synack.harness.fuzz import findings
from synack.harness.fuzz.fuzz import Call, Example, Inject, Pick, run_example
from synack.harness.fuzz.fuzzcmd import oracle_config
from synack.harness.fuzz.fuzzing import Campaign, fuzz
from synack.harness.fuzz.targets.base import CallName, Observation, Role, Target
from synack.harness.fuzz.targets.model import ModelTarget, fuzz_config
from synack.harness.fuzz.targets.registry import open_target
from synack.model import Flags
from synack.model.config import Profile
from synack.model.types import Reply, Signal
from tests.own_stack import DropsResets
from tests.util import run_synack

REPO = Path(__file__).resolve().parent.parent
EXACT = Pick("exact")
SYN, ACK, FIN_ACK = (int(f) for f in (Flags.SYN, Flags.ACK, Flags.FIN | Flags.ACK))
TO_TIME_WAIT = (
    Inject(SYN, EXACT, EXACT),
    Inject(ACK, EXACT, EXACT),
    Call(CallName.SHUTDOWN),
    Inject(FIN_ACK, EXACT, EXACT),
)


@dataclass
class TwoBugs(DropsResets):
    """Two seeded bugs: RST replies are lost, and so is every "connection reset"."""

    def collect(self, expect: int) -> Observation:
        seen = super().collect(expect)
        reset = Signal(Reply.CONNECTION_RESET)
        return Observation(segments=seen.segments, user=tuple(u for u in seen.user if u != reset))


def two_bugs(profile: Profile) -> Target:
    return TwoBugs(fuzz_config(profile), name="own-stack-two-bugs")


def _fuzz(tmp_path: Path, target: str, *args: str) -> tuple[dict[str, Any], str]:
    report = tmp_path / "report.json"
    done = run_synack(
        "fuzz", "--target", target, "--out", str(tmp_path / "out"), "--db", str(tmp_path / "db"),
        "--json", str(report), *args, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    return json.loads(report.read_text()), done.stdout


def _replays(case: str, *args: str) -> None:
    again = run_synack("replay", case, *args, timeout=120, cwd=REPO)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "\nreproduced:" in again.stdout, again.stdout


def test_a_variant_with_one_cause_is_one_group_whose_members_are_listed(tmp_path: Path) -> None:
    data, shown = _fuzz(
        tmp_path, "variant:no-time-wait", "--examples", "400", "--seed", "7",
        "--shrink-time", "3",
    )  # fmt: skip
    groups = data["findings"]
    assert 1 <= data["groups"] == len(groups) <= 2, [g["group"]["signature"] for g in groups]
    assert data["distinct_findings"] == sum(g["group"]["count"] for g in groups)
    assert data["distinct_findings"] > len(groups)  # several findings, collapsed
    first = groups[0]["group"]
    assert first["signature"]["differs"] == "closed" and first["states"] == ["TIME-WAIT"]
    assert "no connection (CLOSED) in TIME-WAIT" in shown
    for group in groups:
        assert group["group"]["count"] == 1 + len(group["group"]["members"])
        assert group["group"]["examples"] >= group["group"]["count"]
        assert all(Path(f).is_file() for f in group["files"])
        _replays(group["files"][0])
    # The others are saved beside the representative, replayable too, and indexed.
    owner, member = next((g, m) for g in groups for m in g["group"]["members"])
    assert Path(member["files"][0]).parent.name.endswith("-members")
    _replays(member["files"][0])
    index = (tmp_path / "out" / "findings.txt").read_text()
    assert index.count("\ngroup ") + index.startswith("group ") == len(groups)
    assert Path(member["files"][0]).name in index
    saved = json.loads(Path(groups[0]["files"][0]).read_text())
    assert saved["group"]["signature"] == first["signature"]
    assert first["representative"] == groups[0]["files"]
    saved = json.loads(Path(member["files"][0]).read_text())
    assert saved["group"]["representative"] == Path(member["files"][0]).parent.name.replace(
        "-members", ".json"
    )
    assert saved["group"]["signature"] == owner["group"]["signature"]


def test_one_bug_in_many_states_is_one_group(tmp_path: Path) -> None:
    data, _ = _fuzz(
        tmp_path, "python:tests.own_stack:drops_resets", "--examples", "300", "--seed", "1",
        "--shrink-time", "3",
    )  # fmt: skip
    (group,) = data["findings"]
    signature = group["group"]["signature"]
    assert (signature["differs"], signature["observed"]) == ("segments", "nothing")
    assert signature["expected"] == ["RST"] and signature["rules"] is None
    assert len(group["group"]["states"]) >= 3  # one cause, seen in many states
    assert group["group"]["count"] > 3


def test_two_seeded_bugs_are_two_groups_and_the_summary_says_what_the_app_was_told(
    tmp_path: Path,
) -> None:
    data, shown = _fuzz(
        tmp_path, "python:tests.test_findings_groups:two_bugs", "--examples", "600",
        "--seed", "2", "--shrink-time", "3",
    )  # fmt: skip
    signatures = sorted(
        (g["group"]["signature"]["differs"], g["group"]["signature"]["observed"],
         tuple(g["group"]["signature"]["expected"]))
        for g in data["findings"]
    )  # fmt: skip
    assert signatures == [
        ("segments", "nothing", ("RST",)),
        ("told", "nothing", ('"connection reset"',)),
    ]
    told = next(g for g in data["findings"] if g["group"]["signature"]["differs"] == "told")
    assert (
        'told nothing; the specification says "connection reset"' in told["divergence"]["summary"]
    )
    assert 'told nothing; the specification says "connection reset"' in shown
    for group in data["findings"]:
        _replays(group["files"][0], "--target", "python:tests.test_findings_groups:two_bugs")


def test_a_notification_difference_is_shown_verbatim(tmp_path: Path) -> None:
    target = open_target("variant:no-time-wait", Profile.RFC9293)
    cfg = oracle_config(target, Profile.RFC9293)
    example = Example(Role.PASSIVE, 1000, 5000, (*TO_TIME_WAIT, Call(CallName.SEND, 3)))
    run = run_example(target, example, cfg)
    assert run.divergence is not None and run.steps[-1].event == "call:send"
    summary = run.divergence.summary()
    assert summary.startswith(
        'told "error: connection does not exist"; '
        'the specification says "error: connection closing"'
    ), summary
    chart = findings.chart(run)
    assert "model [states before -> after]" in chart and summary in chart
    key = findings.group_key(run, target.traits)
    assert key[0] == "closed"  # the target answers as if it had no connection
    # The specification's own answer in TIME-WAIT is no divergence at all.
    assert run_example(open_target("model", Profile.RFC9293), example, cfg).divergence is None


def test_the_group_key_leaves_out_where_and_keeps_what() -> None:
    target = ModelTarget(fuzz_config(Profile.RFC9293), name="drops")
    drops = DropsResets(fuzz_config(Profile.RFC9293), name="drops")
    cfg = oracle_config(target, Profile.RFC9293)
    # A RST owed in LISTEN (an ACK there) and one owed in ESTABLISHED (a SYN): one group.
    in_listen = run_example(
        drops, Example(Role.PASSIVE, 1000, 5000, (Inject(ACK, EXACT, EXACT),)), cfg
    )
    in_established = run_example(
        drops,
        Example(Role.PASSIVE, 1000, 5000, (*TO_TIME_WAIT[:2], Inject(SYN, EXACT, EXACT))),
        cfg,
    )
    assert in_listen.divergence is not None and in_established.divergence is not None
    assert in_listen.divergence.candidates != in_established.divergence.candidates
    assert in_listen.signature() != in_established.signature()
    assert findings.group_key(in_listen, drops.traits) == findings.group_key(
        in_established, drops.traits
    )
    # Another bug, another group.
    bugs = TwoBugs(fuzz_config(Profile.RFC9293), name="two")
    rst = int(Flags.RST)
    reset = run_example(
        bugs, Example(Role.PASSIVE, 1000, 5000, (*TO_TIME_WAIT[:2], Inject(rst, EXACT, EXACT))), cfg
    )
    assert reset.divergence is not None
    assert findings.group_key(reset, bugs.traits) != findings.group_key(in_listen, drops.traits)


def test_the_loop_shrinks_one_case_per_group_and_lists_the_others() -> None:
    """After a group is found, its divergences are members as drawn: no shrinking
    attempt runs for them (an attempt is a run with no example counted), and the
    campaign is not stopped by --max-findings, which counts groups."""
    target = open_target("variant:no-time-wait", Profile.RFC9293)
    cfg = oracle_config(target, Profile.RFC9293)
    events: list[tuple[str, int]] = []  # ("run", -) or ("counted", groups so far)

    def counted(campaign: Campaign) -> None:
        events.append(("counted", len(campaign.findings)))

    campaign = fuzz(
        target, cfg, 600, 120, 7, None, "groups", progress=counted, max_findings=2,
        on_run=lambda run: events.append(("run", 0)), shrink_time=3,
    )  # fmt: skip
    assert campaign.examples == 600 and not campaign.stopped
    (group,) = campaign.findings
    assert group.members and group.examples > len(group.members)
    assert all(m.key == group.key for m in group.members)
    assert len({m.run.signature() for m in [group, *group.members]}) == 1 + len(group.members)
    known = next(i for i, (kind, groups) in enumerate(events) if kind == "counted" and groups)
    later = [kind for kind, _ in events[known:]]
    attempts = [i for i in range(len(later) - 1) if later[i] == later[i + 1] == "run"]
    assert attempts == [], f"{len(attempts)} shrinking attempts after the group was known"
    before = [kind for kind, _ in events[:known]]
    assert any(before[i] == before[i + 1] == "run" for i in range(len(before) - 1))
