"""The independent stacks (lwIP, gVisor netstack, libslirp) as fuzz targets.

Each stack's agent is built from its shim on first use (harness/fuzz/targets/stacks.py)
and fuzzed for at least 500 examples within a short budget, its findings
saved, read by tshark and replayed as for Linux.  A seeded bug (an agent
wrapper that drops the stack's RSTs) is caught, and the finding is the
seeded bug: the same example replayed on the unwrapped stack does not
diverge that way.  A missing toolchain is a one-line error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synack.harness.fuzz.targets.stacks import STACKS, agent_binary, cache_root

from .util import require_stack, require_tool, run_synack

# The profile each stack's campaign runs with: the one that fits it best
# (docs/stacks/*.md has the figures).
PROFILE = {"lwip": "rfc9293", "gvisor": "rfc9293", "slirp": "rfc9293"}


def synack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_synack(*args, env=env)


def require_root(stack: str) -> None:
    if stack == "slirp" and os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the slirp agent needs root (a private network namespace), and CI is set")
        pytest.skip("the slirp agent needs root for its private network namespace")


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_a_stack_takes_500_examples_and_its_findings_replay(stack: str, tmp_path: Path) -> None:
    require_stack(stack)
    require_root(stack)
    out, report = tmp_path / "out", tmp_path / "report.json"
    done = synack("fuzz", "--target", stack, "--profile", PROFILE[stack], "--examples", "500",
                  "--budget", "240", "--shrink-time", "0", "--max-findings", "500", "--seed", "1",
                  "--out", str(out), "--json", str(report))  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    data: dict[str, Any] = json.loads(report.read_text())
    assert data["examples"] >= 500, data["stopped"]
    assert data["stopped"] is None, data["stopped"]
    assert not [a for a in data["anomalies"] if "malformed" in a], data["anomalies"][:3]
    for finding in data["findings"]:
        assert all(Path(f).is_file() for f in finding["files"])
    steady = [f for f in data["findings"] if f["reproduced"] == "3/3"]
    if data["findings"]:
        assert steady, "no finding reproduced every time"
        case = Path(steady[0]["files"][0])
        again = synack("replay", str(case))
        assert again.returncode == 1, again.stdout + again.stderr
        tshark = require_tool("tshark")
        read = subprocess.run([tshark, "-r", str(case.with_suffix(".pcap"))],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert read.returncode == 0 and "198.18.0.1" in read.stdout


def _expected_rst(finding: dict[str, Any]) -> bool:
    divergence = finding["divergence"]
    observed = any("RST" in s["flags"] for s in divergence["observed"])
    expected = all(
        any("RST" in s["flags"] for s in path["segments"]) for path in divergence["expected"]
    )
    return expected and not observed


def test_a_stack_whose_resets_are_dropped_is_caught(tmp_path: Path) -> None:
    require_stack("lwip")
    wrapped = (
        f"agent:{sys.executable} -m synack.harness.fuzz.targets.agent_filter --drop-resets -- "
        + str(agent_binary("lwip"))
    )
    out, report = tmp_path / "out", tmp_path / "report.json"
    done = synack("fuzz", "--target", wrapped, "--examples", "300", "--budget", "90",
                  "--no-waits", "--max-findings", "8", "--shrink-time", "3", "--seed", "3",
                  "--out", str(out), "--json", str(report))  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    data = json.loads(report.read_text())
    seeded = [f for f in data["findings"] if _expected_rst(f) and f["reproduced"] == "3/3"]
    assert seeded, [f["divergence"]["summary"] for f in data["findings"]]
    # lwIP has RST-less divergences of its own (docs/stacks/lwip.md): the seeded bug
    # is a finding that the unwrapped stack, which sends the RST, does not reproduce.
    own = []
    for finding in seeded[:4]:
        case = Path(finding["files"][0])
        plain = synack("replay", str(case), "--target", "lwip")
        assert plain.returncode in (0, 1), plain.stderr
        if "\nreproduced:" not in plain.stdout:
            break
        own.append(finding["divergence"]["summary"])
    else:
        raise AssertionError(f"every RST finding is lwIP's own: {own}")
    refused = synack("replay", str(case))  # a file naming an agent never runs it
    assert refused.returncode == 2 and wrapped in refused.stderr, refused.stderr
    again = synack("replay", str(case), "--target", wrapped)
    assert again.returncode == 1, again.stdout + again.stderr


def test_a_missing_toolchain_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "SYNACK_AGENT_CACHE": str(tmp_path / "cache")}
    done = synack("fuzz", "--target", "gvisor", "--examples", "1", env=env)
    assert done.returncode == 2
    assert "cannot build its agent without the Go toolchain (golang-go)" in done.stderr
    assert "apt-get install golang-go golang-gvisor-gvisor-dev" in done.stderr
    assert "Traceback" not in done.stderr


def test_agents_are_built_once_into_the_cache(tmp_path: Path, monkeypatch: Any) -> None:
    require_stack("lwip")
    monkeypatch.setenv("SYNACK_AGENT_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    first = agent_binary("lwip")
    stamp = first.stat().st_mtime_ns
    assert agent_binary("lwip") == first and first.stat().st_mtime_ns == stamp
    assert os.access(first, os.X_OK)
    assert not list(tmp_path.glob(".lwip-*")), "a staging directory was left behind"
