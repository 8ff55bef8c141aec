"""`synack check` as a user runs it: exit statuses, JSON report, saved counterexamples."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from synack.harness.common.exits import reset_signals_in_child
from synack.harness.prove import relation, twoends
from synack.harness.prove.prove import claims_for
from synack.model import Profile

from .util import wait_for_output

SYNACK = Path(sys.executable).parent / "synack"


def synack(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert SYNACK.exists(), f"the synack console script is not installed at {SYNACK}"
    return subprocess.run([str(SYNACK), *args], capture_output=True, text=True, timeout=timeout)


def test_check_small_scenarios_all_hold() -> None:
    result = synack("check", "--scenario", "handshake", "--scenario", "refused")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all hold" in result.stdout
    assert "Traceback" not in result.stderr


def test_two_way_handshake_on_reconnect_names_the_violation_in_json() -> None:
    result = synack(
        "check", "--variant", "two-way-handshake", "--scenario", "reconnect", "--json", "-"
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    (entry,) = report["results"]
    assert (entry["scenario"], entry["variant"], entry["profile"]) == (
        "reconnect",
        "two-way-handshake",
        "rfc9293",
    )
    props = {p["name"]: p for p in entry["properties"]}
    violated = props["no-old-syn-connection"]
    assert violated["holds"] is False
    steps = violated["counterexample"]["steps"]
    assert steps[-1]["kind"] == "deliver" and steps[-1]["segment"]["seq"] == 90
    assert steps[-1]["after"]["server"] == "ESTABLISHED"
    assert violated["counterexample"]["mermaid"].startswith("sequenceDiagram")
    assert all(p["counterexample"] is None for n, p in props.items() if p["holds"])
    for key in ("states", "transitions", "seconds"):
        assert entry[key] > 0


def test_out_dir_saves_json_mermaid_and_chart(tmp_path: Path) -> None:
    result = synack(
        "check", "--variant", "early-close", "--scenario", "lifecycle", "--out", str(tmp_path)
    )
    assert result.returncode == 1
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert "lifecycle.ack-before-close.json" in saved
    assert "lifecycle.ack-before-close.mmd" in saved
    assert "lifecycle.ack-before-close.txt" in saved
    case = json.loads((tmp_path / "lifecycle.ack-before-close.json").read_text())
    assert case["property"] == "ack-before-close" and case["steps"]


def test_state_limit_gives_partial_report_and_exit_3() -> None:
    result = synack("check", "--scenario", "lifecycle", "--max-states", "500", "--json", "-")
    assert result.returncode == 3, result.stderr
    (entry,) = json.loads(result.stdout)["results"]
    assert entry["complete"] is False
    assert "state limit" in entry["stop_reason"]
    holds = {p["name"]: p["holds"] for p in entry["properties"]}
    assert holds["no-deadlock"] is None and holds["eventually-quiescent"] is None


def test_budget_stops_a_large_exploration() -> None:
    result = synack(
        "check", "--scenario", "lifecycle", "--eager-timers", "--budget", "2", "--json", "-"
    )
    assert result.returncode == 3
    (entry,) = json.loads(result.stdout)["results"]
    assert "budget" in entry["stop_reason"] and entry["seconds"] < 30


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--scenario", "nope"),
        ("check", "--variant", "nope"),
        ("check", "--profile", "bsd"),
        ("check", "--capacity", "0"),
        ("check", "--dup", "-1"),
        ("check", "--property", "nope"),
        ("check", "--max-states", "0"),
        ("check", "--capacity", "x"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args: tuple[str, ...]) -> None:
    result = synack(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_list_properties_shows_the_catalogue() -> None:
    result = synack("list", "properties")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == [
        "no-old-syn-connection",
        "ack-before-close",
        "graceful-close-delivers-all-data",
        "half-close-delivers",
        "time-wait-reacks-fin",
        "no-stale-segment-accepted",
        "retransmission-bounded",
        "no-deadlock",
        "eventually-quiescent",
    ]


def test_saved_counterexample_replays_and_tampering_is_caught(tmp_path: Path) -> None:
    result = synack(
        "check", "--variant", "no-time-wait", "--scenario", "lifecycle", "--out", str(tmp_path)
    )
    assert result.returncode == 1
    case_path = tmp_path / "lifecycle.time-wait-reacks-fin.json"
    replayed = synack("replay", str(case_path))
    assert replayed.returncode == 1, replayed.stderr
    assert "reproduced: time-wait-reacks-fin VIOLATED" in replayed.stdout
    # Change one delivered segment: the replay must refuse the step that no longer fits.
    case = json.loads(case_path.read_text())
    delivery = next(s for s in case["steps"] if s["kind"] == "deliver")
    delivery["segment"]["seq"] += 1
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(case))
    refused = synack("replay", str(tampered))
    assert refused.returncode == 2
    assert "not enabled" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize("content", ["not json", "[]", '{"property": "nope", "steps": []}'])
def test_replay_of_garbage_exits_2(tmp_path: Path, content: str) -> None:
    path = tmp_path / "case.json"
    path.write_text(content)
    result = synack("replay", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_ctrl_c_keeps_the_partial_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [str(SYNACK), "check", "--scenario", "lifecycle", "--eager-timers", "--json", str(report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SYNACK_PROGRESS": "lines"},
        preexec_fn=reset_signals_in_child,
    )
    assert proc.stderr is not None
    try:
        # Interrupt once the exploration is under way, not during start-up imports.
        early = wait_for_output(proc.stderr, b"synack check: exploring lifecycle", timeout=120)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    errors = (early + err).decode()
    assert proc.returncode == 130, errors
    assert "interrupted" in out.decode() and "Traceback" not in errors
    (entry,) = json.loads(report.read_text())["results"]
    assert entry["complete"] is False and entry["states"] > 0


@pytest.mark.parametrize("profile", ["rfc9293", "linux", "rfc1337"])
def test_prove_proves_every_lemma_of_a_profile(profile: str) -> None:
    lemmas = [c.name for c in claims_for(Profile(profile))]
    flags = [arg for name in lemmas for arg in ("--property", name)]
    result = synack("prove", "--profile", profile, *flags, "--json", "-")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["profile"] == profile
    assert report["results"] and all(r["result"] == "proved" for r in report["results"])
    names = {r["name"] for r in report["results"]}
    rst = "blind-rst-one-value" if profile == "linux" else "blind-rst-whole-window"
    assert rst in names


def test_prove_refutes_a_variant_with_a_replayed_chart() -> None:
    result = synack(
        "prove", "--variant", "no-give-up", "--property", "retransmission-bounded", "--json", "-"
    )
    assert result.returncode == 1, result.stderr
    core, entry = json.loads(result.stdout)["results"]
    assert core["name"] == "endpoint-invariants" and core["result"] == "proved"
    assert entry["result"] == "refuted" and "sent its SYN 4 times" in entry["reason"]
    assert entry["steps"][0].startswith("OpenCall") and len(entry["chart"]) == 4


def test_prove_reports_an_unfinished_proof_as_unknown() -> None:
    result = synack("prove", "--property", "ack-before-close", "--timeout", "3", "--json", "-")
    assert result.returncode == 3, result.stderr
    core, entry = json.loads(result.stdout)["results"]
    assert core["result"] == "unknown" and "timeout" in core["reason"]
    assert entry["result"] == "unknown" and "timeout" in entry["reason"]


def test_prove_proves_the_endpoint_invariants_and_a_claim_under_linux() -> None:
    result = synack("prove", "--profile", "linux", "--property", "ack-before-close", "--json", "-")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r["result"] for r in json.loads(result.stdout)["results"]}
    assert rows == {"endpoint-invariants": "proved", "ack-before-close": "proved"}


@pytest.mark.slow
def test_prove_proves_the_transition_relation_and_two_endpoint_claims_under_linux() -> None:
    """(rfc9293: the agreement tests of test_z3_relation.py and test_z3_pair.py.)"""
    names = [*relation.BY_NAME, *twoends.BY_NAME]
    flags = [arg for name in names for arg in ("--property", name)]
    result = synack("prove", "--profile", "linux", *flags, "--json", "-")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r["result"] for r in json.loads(result.stdout)["results"]}
    cores = ["endpoint-invariants", "two-endpoint-invariants"]
    assert rows == dict.fromkeys([*cores, *names], "proved")


@pytest.mark.parametrize(
    "args",
    [
        ("prove", "--variant", "early-closed"),
        ("prove", "--property", "nope"),
        ("prove", "--profile", "bsd"),
        ("prove", "--timeout", "0"),
    ],
)
def test_prove_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    result = synack(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
