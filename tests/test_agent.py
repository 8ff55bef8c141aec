"""`--target agent:"CMD"`: a stack in another process behind the agent contract.

The reference agent (`python -m synack.harness.fuzz.targets.model_agent`) is the
specification behind the contract, so it must run clean; with
`--drop-resets` (a seeded bug: the stack's RSTs never leave it) the
fuzzer must catch it.  Agents that break the contract are one-line errors.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from synack.harness.fuzz.targets.agent import AGENT_TRAITS, REPLIES, parse_hello

from .util import require_tool, run_synack

AGENT = f"agent:{sys.executable} -m synack.harness.fuzz.targets.model_agent"


def synack(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_synack(*args, timeout=600, cwd=cwd)


def test_reference_agent_runs_clean(tmp_path: Path) -> None:
    done = synack("fuzz", "--target", AGENT, "--examples", "300", "--seed", "4",
                  "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "synack.harness.fuzz.targets.model_agent" in done.stdout + done.stderr


def test_agent_that_drops_its_resets_is_caught(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    out = str(tmp_path / "out")
    done = synack("fuzz", "--target", AGENT + " --drop-resets", "--examples", "500",
                  "--budget", "120", "--max-findings", "2", "--shrink-time", "15",
                  "--out", out, "--json", str(report))  # fmt: skip
    assert done.returncode == 1, done.stderr
    findings = json.loads(report.read_text())["findings"]
    assert findings
    shown = json.dumps(findings)
    assert "RST" in shown
    case = sorted((tmp_path / "out").glob("finding-*.json"))[0]
    again = synack("replay", str(case), "--target", AGENT + " --drop-resets")
    assert again.returncode == 1, again.stdout + again.stderr
    tshark = require_tool("tshark")
    pcap = case.with_suffix(".pcap")
    read = subprocess.run([tshark, "-r", str(pcap)], capture_output=True, text=True, timeout=60)
    assert read.returncode == 0 and "198.18.0.1" in read.stdout


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "agent.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return f"agent:{path}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("echo hello there\n", "not an agent hello"),
        ("echo synack-agent 2 name=x\n", "agent speaks protocol 2"),
        ("echo synack-agent 1 name=x colour=blue\n", "unknown hello field"),
        ("echo oops >&2; exit 3\n", "agent exited (status 3); its stderr says: oops"),
        # hello, then it dies at the first command
        ("echo synack-agent 1 name=x\nread line\nexit 5\n", "agent exited (status 5)"),
    ],
)
def test_agents_outside_the_contract_are_one_line_errors(
    tmp_path: Path, body: str, message: str
) -> None:
    done = synack("fuzz", "--target", _script(tmp_path, body), "--examples", "5",
                  "--out", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_missing_agent_command() -> None:
    done = synack("fuzz", "--target", "agent:/nonexistent/agent", "--examples", "5")
    assert done.returncode == 2
    assert "cannot be started" in done.stderr and "Traceback" not in done.stderr
    empty = synack("fuzz", "--target", "agent:", "--examples", "5")
    assert empty.returncode == 2 and 'agent:"CMD ARGS"' in empty.stderr


def test_hello_sets_traits() -> None:
    name, traits = parse_hello("synack-agent 1 name=lwip spontaneous_timers=0 slow_waits=0")
    assert name == "lwip"
    assert not traits.spontaneous_timers and not traits.slow_waits
    assert traits.holds_out_of_order is AGENT_TRAITS.holds_out_of_order
    with pytest.raises(ValueError, match="not an agent hello"):
        parse_hello("")


@pytest.mark.parametrize(
    ("verb", "reply", "within"),
    [
        ("reset", "ok", True),
        ("reset", "ok 3", False),
        ("listen", "errno EADDRINUSE", True),
        ("listen", "errno eaddrinuse", False),
        ("accept", "accepted", True),
        ("accept", "errno EINVAL", True),  # gVisor's shim, on a closed listener
        ("accept", "ok", False),
        ("send", "ok 4", True),
        ("send", "ok 1e3", False),
        ("send", "ok -1", False),
        ("recv", "data 00ff", True),
        ("recv", "data 0ff", False),  # an odd number of hex digits
        ("recv", "data ", False),
        ("recv", "eof", True),
        ("recv", "errno EAGAIN", True),
        ("recv", "accepted", False),
        ("shutdown", "errno ENOTCONN", True),
        ("abort", "ok", True),
        ("wait", "banana", False),
    ],
)
def test_replies_are_checked_against_the_contract(verb: str, reply: str, within: bool) -> None:
    pattern, _ = REPLIES[verb]
    assert (re.fullmatch(pattern, reply) is not None) == within
