"""The fuzzer: oracle, in-process targets, variants found and shrunk, findings on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synack.harness.fuzz import findings
from synack.harness.fuzz.fuzz import Call, Example, Inject, Pick, Wait, run_example
from synack.harness.fuzz.fuzzcmd import oracle_config
from synack.harness.fuzz.fuzzing import fuzz
from synack.harness.fuzz.oracle import Oracle, same_segment
from synack.harness.fuzz.targets.base import CallName, Observation, Role
from synack.harness.fuzz.targets.model import MODEL_TRAITS, ModelTarget
from synack.harness.fuzz.targets.pcap import read_pcap
from synack.harness.fuzz.targets.registry import open_target
from synack.harness.fuzz.targets.wire import decode
from synack.model import Flags, Segment, closed
from synack.model.config import Profile, Variant
from synack.model.types import OpenCall, SegmentArrives
from tests.util import require_tool

EXACT = Pick("exact")
SYN, ACK, FIN_ACK, RST = (int(f) for f in (Flags.SYN, Flags.ACK, Flags.FIN | Flags.ACK, Flags.RST))


def synack_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synack.harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


LIFECYCLE = Example(
    Role.PASSIVE,
    1000,
    0xFFFFFFF0,  # the target's ISN: its sequence numbers wrap during the example
    (
        Inject(SYN, EXACT, EXACT),
        Inject(ACK, EXACT, EXACT),
        Inject(ACK, EXACT, EXACT, size=5),
        Call(CallName.RECV),
        Call(CallName.SEND, 7),
        Inject(ACK, EXACT, EXACT),
        Call(CallName.SHUTDOWN),
        Inject(FIN_ACK, EXACT, EXACT),
        Inject(FIN_ACK, Pick("old"), EXACT),  # a retransmitted FIN: ACKed again in TIME-WAIT
    ),
)


# ------------------------------------------------------------------ oracle


def test_oracle_learns_the_iss_from_the_targets_syn() -> None:
    oracle = Oracle(closed(oracle_config(ModelTarget(closed().cfg), Profile.RFC9293)), MODEL_TRAITS)
    target = ModelTarget(oracle_config(ModelTarget(closed().cfg), Profile.RFC9293))
    target.start(Role.ACTIVE, 123456)
    divergence, labels = oracle.advance(OpenCall(active=True), target.collect(1))
    assert divergence is None and "CLOSED open:active" in labels
    (tcb,) = oracle.candidates
    assert tcb.iss == 123456


def test_oracle_reports_a_missing_reply() -> None:
    cfg = oracle_config(ModelTarget(closed().cfg), Profile.RFC9293)
    oracle = Oracle(closed(cfg), MODEL_TRAITS)
    oracle.advance(OpenCall(active=False), Observation())
    divergence, _ = oracle.advance(SegmentArrives(Segment(Flags.SYN, 5)), Observation())
    assert divergence is not None
    assert [str(p.segments[0].flags) for p in divergence.expected] == ["SYN,ACK"]
    assert "observed nothing" in divergence.summary()


def test_psh_and_windows_are_compared_as_documented() -> None:
    a = Segment(Flags.ACK, 1, 2, 100, b"x")
    b = Segment(Flags.ACK | Flags.PSH, 1, 2, 50, b"x")
    assert same_segment(a, b, exact_windows=False)
    assert not same_segment(a, b, exact_windows=True)
    assert not same_segment(a, Segment(Flags.ACK, 1, 3, 100, b"x"), exact_windows=False)


# ------------------------------------------------------------ model target


@pytest.mark.parametrize("profile", list(Profile))
def test_directed_lifecycle_agrees_with_the_model(profile: Profile) -> None:
    target = open_target("model", profile)
    run = run_example(target, LIFECYCLE, oracle_config(target, profile))
    assert run.divergence is None, findings.chart(run)
    assert run.steps[-1].after == ("TIME-WAIT",)


def test_model_target_has_no_findings_in_2000_examples(tmp_path: Path) -> None:
    target = open_target("model", Profile.RFC9293)
    campaign = fuzz(
        target, oracle_config(target, Profile.RFC9293), 2000, 600, 7, tmp_path / "db", "model"
    )
    assert campaign.examples == 2000
    assert campaign.findings == []
    # Generation reaches deep into the lifecycle: every state is exercised.
    states = {label.split(" ")[0] for label in campaign.coverage}
    assert len(states) == 11, states


def test_steering_reaches_more_and_respects_no_waits(tmp_path: Path) -> None:
    """Coverage steering aims at event classes still missing in a state; a campaign
    without waits never draws one, even when steering toward timer classes."""
    target = open_target("model", Profile.RFC9293)
    cfg = oracle_config(target, Profile.RFC9293)
    drawn: list[Example] = []
    campaign = fuzz(
        target, cfg, 600, 300, 3, tmp_path / "db", "model", waits=False,
        on_run=lambda r: drawn.append(r.example),
    )  # fmt: skip
    assert not [a for e in drawn for a in e.actions if isinstance(a, Wait)]
    assert sum(campaign.steered.values()) > 0  # actions were aimed at missing classes
    assert not [label for label in campaign.coverage if "timeout:" in label]
    with_waits = fuzz(target, cfg, 600, 300, 3, tmp_path / "db2", "model")
    assert [label for label in with_waits.coverage if "timeout:" in label]


@pytest.mark.parametrize("variant", [v.value for v in Variant])
def test_every_variant_is_found_and_shrunk(variant: str, tmp_path: Path) -> None:
    spec = f"variant:{variant}"
    target = open_target(spec, Profile.RFC9293)
    cfg = oracle_config(target, Profile.RFC9293)
    campaign = fuzz(target, cfg, 50_000, 60, 11, tmp_path / "db", spec, max_findings=1)
    assert campaign.findings, f"{spec}: no finding in {campaign.examples} examples"
    run = campaign.findings[0].run
    assert len(run.example.actions) <= 8, findings.chart(run)
    # The shrunk case is a real divergence: it replays, and the specification
    # itself runs the same example without one.
    again = run_example(target, run.example, cfg)
    assert again.divergence is not None and again.signature() == run.signature()
    spec_target = open_target("model", Profile.RFC9293)
    assert run_example(spec_target, run.example, cfg).divergence is None


def test_shrinking_stops_at_its_time_limit_and_keeps_the_failure(tmp_path: Path) -> None:
    """Shrinking with real-time waits is slow: past its time limit (`shrink_time`, here
    none at all) the smallest failure so far is kept, as a finding that reproduced (not
    a flaky one)."""
    spec = "variant:two-way-handshake"
    target = open_target(spec, Profile.RFC9293)
    cfg = oracle_config(target, Profile.RFC9293)
    runs: list[bool] = []
    campaign = fuzz(
        target, cfg, 5000, 60, 11, tmp_path / "db", spec, max_findings=1,
        on_run=lambda r: runs.append(r.divergence is not None), shrink_time=0.0,
    )  # fmt: skip
    assert len(campaign.findings) == 1 and not campaign.findings[0].flaky
    assert runs.index(True) == len(runs) - 1  # no shrinking attempt ran after the failure
    again = run_example(target, campaign.findings[0].run.example, cfg)
    assert again.divergence is not None


def test_a_waiting_example_gives_up_as_the_specification_says() -> None:
    target = open_target("model", Profile.RFC9293)
    example = Example(Role.ACTIVE, 0, 0, (Wait(), Wait(), Wait(), Inject(ACK, EXACT, EXACT)))
    run = run_example(target, example, oracle_config(target, Profile.RFC9293))
    assert run.divergence is None
    assert run.steps[3].after == ("CLOSED",)  # two retransmissions, then give-up


# --------------------------------------------------------------- findings


def _a_finding(tmp_path: Path) -> Path:
    target = open_target("variant:no-time-wait", Profile.RFC9293)
    cfg = oracle_config(target, Profile.RFC9293)
    run = run_example(target, LIFECYCLE, cfg)
    assert run.divergence is not None
    data = findings.save(
        tmp_path, "finding-01", run, "variant:no-time-wait", Profile.RFC9293, None, False, True
    )
    assert data["divergence"]["states"] == ["TIME-WAIT"]
    return tmp_path / "finding-01.json"


def test_finding_replays_to_the_same_divergence(tmp_path: Path) -> None:
    case = _a_finding(tmp_path)
    result = synack_cli("replay", str(case))
    assert result.returncode == 1, result.stderr
    assert "reproduced:" in result.stdout and "DIVERGENCE" in result.stdout
    # Against the specification itself the same example runs clean.
    clean = synack_cli("replay", str(case), "--target", "model")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "not reproduced" in clean.stdout


def test_finding_pcap_opens_in_tshark(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    case = _a_finding(tmp_path)
    data = json.loads(case.read_text())
    pcap = tmp_path / data["pcap"]
    packets = read_pcap(pcap)
    sent = sum(1 for step in data["steps"] if step["sent"])
    seen = sum(len(step["observed"]) for step in data["steps"])
    assert len(packets) == sent + seen
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "fields", "-e", "tcp.flags.str"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    assert len([line for line in out if line.strip()]) == len(packets)
    assert decode(packets[-1][1]).segment.rst  # the target's RST in "TIME-WAIT"


def test_bad_replay_files_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": findings.KIND, "target": "model"}))
    result = synack_cli("replay", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    bad.write_text("{not json")
    assert synack_cli("replay", str(bad)).returncode == 2


# --------------------------------------------------------------------- CLI


def test_fuzz_cli_reports_and_saves(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = synack_cli(
        "fuzz",
        "--target",
        "variant:unchecked-synack",
        "--examples",
        "3000",
        "--seed",
        "3",
        "--max-findings",
        "1",
        "--out",
        str(tmp_path / "out"),
        "--db",
        str(tmp_path / "db"),
        "--json",
        str(report),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert data["findings"] and data["coverage"]["covered"] > 0
    assert data["examples_per_second"] > 0
    for path in data["findings"][0]["files"]:
        assert Path(path).exists()
    assert (tmp_path / "db").is_dir()  # the example database is where we said


@pytest.mark.parametrize(
    "args",
    [
        ["--target", "nosuch"],
        ["--target", "variant:nosuch"],
        ["--target", "model", "--examples", "0"],
        ["--target", "model", "--profile", "bsd"],
    ],
)
def test_fuzz_cli_bad_usage_exits_2(args: list[str]) -> None:
    result = synack_cli("fuzz", *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_list_targets() -> None:
    result = synack_cli("list", "targets")
    assert result.returncode == 0
    assert "linux" in result.stdout and "variant:no-give-up" in result.stdout


def test_ctrl_c_ends_the_campaign_with_a_report(tmp_path: Path) -> None:
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "synack.harness.cli", "fuzz", "--target", "model",
         "--examples", "1000000", "--budget", "120", "--out", str(tmp_path / "out"),
         "--db", str(tmp_path / "db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(4)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err  # the exit-status contract: 130 after SIGINT
    assert "stopped: interrupted" in out and "Traceback" not in err
