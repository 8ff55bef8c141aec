"""`synack conformance`: the directed RFC 9293 checks, and the matrix for all four targets.

Both ways: the specification conforms on every check, and every broken
variant that a check can show (all but no-give-up, which needs seven
timer expiries) deviates on the check written for its flaw, with a
replayable evidence case; a small stack whose RST test includes the right
edge of its window (as gVisor's does) deviates on exactly the right-edge
RST checks.  Then the matrix is generated for linux, lwip, gvisor and
slirp, as CI must.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from synack.harness.fuzz.conformance import (
    ACK_EDGES,
    CHECKS,
    KINDS,
    LINUX_RFC_ALLOWED,
    SEQ_EDGES,
)
from synack.harness.fuzz.fuzz import resolve_ack, resolve_seq
from synack.harness.fuzz.targets.base import Target
from synack.harness.fuzz.targets.model import MODEL_TRAITS, ModelTarget, fuzz_config
from synack.model.config import PROFILE_RULES, Config, Profile
from synack.model.segment import Segment
from synack.model.seq import seq_add
from synack.model.tcb import Tcb
from synack.model.types import SYNCHRONIZED

from .states import one_of_each_state
from .util import require_netns, require_stack, run_synack

REQUIREMENT = re.compile(r"^(MUST|SHLD|MAY)-\d+$")


def synack(*args: str) -> subprocess.CompletedProcess[str]:
    return run_synack(*args, timeout=1500)


def matrix(out: Path, *args: str) -> dict[str, Any]:
    done = synack("conformance", "--out", str(out), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    data: dict[str, Any] = json.loads((out / "conformance.json").read_text())
    return data


def verdicts(data: dict[str, Any], target: str) -> dict[str, str]:
    column = next(t for t in data["targets"] if t["target"] == target)
    return {check: r["verdict"] for check, r in column["results"].items()}


def test_the_battery_cites_rfc_9293() -> None:
    assert len(CHECKS) >= 20 and len({c.id for c in CHECKS}) == len(CHECKS)
    for check in CHECKS:
        assert re.search(r"\b3\.\d+", check.section), check.id
        assert not check.requirement or REQUIREMENT.match(check.requirement), check.id
    assert {"MUST-10", "MUST-11", "MUST-13", "MAY-1"} <= {c.requirement for c in CHECKS}
    linux_rules = {rule.id for rule in PROFILE_RULES[Profile.LINUX]}
    assert set(LINUX_RFC_ALLOWED) <= linux_rules


def test_every_kind_meets_every_edge() -> None:
    ids = {c.id for c in CHECKS}
    for kind in KINDS:
        assert {f"{kind}-seq-{e.name}" for e in SEQ_EDGES} <= ids, kind
        assert {f"{kind}-ack-{e.name}" for e in ACK_EDGES} <= ids, kind
    for state in ("close-wait", "fin-wait-2"):
        assert {f"{state}-rst-seq-right", f"{state}-bare-seq-right"} <= ids, state
    for check in CHECKS:
        if "-seq-" in check.id or "-ack-" in check.id:
            assert "3.10.7.4" in check.section, check.id


@pytest.mark.parametrize("window", [0, 1, 7, 0xFFFF])
def test_the_edges_are_the_windows_own(window: int) -> None:
    """The edges are resolved against the TCB's RCV.WND, whatever it is (0 too)."""
    tcb = _established(fuzz_config(Profile.RFC9293).with_(rcv_wnd=window))
    nxt, right = tcb.rcv_nxt, seq_add(tcb.rcv_nxt, window)
    seqs = {e.name: resolve_seq(e.pick, tcb, 0) for e in SEQ_EDGES}
    assert seqs == {"left-1": seq_add(nxt, -1), "right-1": seq_add(right, -1), "right": right,
                    "right-plus-1": seq_add(right, 1)}  # fmt: skip
    acks = {e.name: resolve_ack(e.pick, tcb) for e in ACK_EDGES}
    assert acks == {"una-1": seq_add(tcb.snd_una, -1), "nxt": tcb.snd_nxt,
                    "nxt-plus-1": seq_add(tcb.snd_nxt, 1)}  # fmt: skip


def _established(cfg: Config) -> Tcb:
    tcb = one_of_each_state(cfg)["established"]
    assert tcb.rcv_wnd == cfg.rcv_wnd
    return tcb


@dataclass
class RightEdgeRst(ModelTarget):
    """A stack whose RST test takes the right edge as in the window (gVisor's does):
    a RST at exactly RCV.NXT+RCV.WND resets the connection."""

    def inject(self, segment: Segment) -> None:
        tcb = self.tcb
        edge = seq_add(tcb.rcv_nxt, tcb.rcv_wnd)
        if segment.rst and tcb.state in SYNCHRONIZED and segment.seq == edge:
            segment = replace(segment, seq=tcb.rcv_nxt)
        super().inject(segment)


def rst_at_right_edge(profile: Profile) -> Target:
    """`python:tests.test_conformance:rst_at_right_edge`: its own window (20), which
    the oracle learns from what it advertises, as from a real stack's."""
    cfg = fuzz_config(profile).with_(rcv_wnd=20, mss=536)
    traits = replace(MODEL_TRAITS, exact_windows=False)
    return RightEdgeRst(cfg, name="right-edge-rst", traits=traits)


RIGHT_EDGE_RST = "python:tests.test_conformance:rst_at_right_edge"
RST_AT_RIGHT_EDGE = {"rst-seq-right", "close-wait-rst-seq-right", "fin-wait-2-rst-seq-right"}


FLAWS = {
    "variant:two-way-handshake": "old-duplicate-syn",
    "variant:no-time-wait": "active-close",
    "variant:unchecked-synack": "syn-sent-bad-ack",
    "variant:early-close": "simultaneous-close",
    "variant:no-half-close": "half-close",
}


def test_the_specification_conforms_and_each_variant_deviates_where_it_is_broken(
    tmp_path: Path,
) -> None:
    targets = ["model", *FLAWS, "variant:no-give-up", RIGHT_EDGE_RST]
    data = matrix(tmp_path, "--targets", ",".join(targets), "--no-fuzz")
    assert set(verdicts(data, "model").values()) == {"conforms"}
    assert set(verdicts(data, "variant:no-give-up").values()) == {"conforms"}
    edge = verdicts(data, RIGHT_EDGE_RST)
    assert {c for c, v in edge.items() if v != "conforms"} == RST_AT_RIGHT_EDGE, edge
    assert {edge[c] for c in RST_AT_RIGHT_EDGE} == {"deviates"}
    for variant, check in FLAWS.items():
        seen = verdicts(data, variant)
        assert seen[check] == "deviates", (variant, seen)
        assert {c for c, v in seen.items() if v != "conforms"} == {check}, (variant, seen)
        column = next(t for t in data["targets"] if t["target"] == variant)
        evidence = tmp_path / column["results"][check]["evidence"]
        assert evidence.is_file() and "explanation" in evidence.read_text()
        again = synack("replay", str(evidence.with_suffix(".json")))
        assert again.returncode == 1, again.stdout + again.stderr
        assert "reproduced" in again.stdout
    page = (tmp_path / "conformance.md").read_text()
    assert "MUST-10" in page and "DEVIATES" in page
    html = (tmp_path / "conformance.html").read_text()
    for link in re.findall(r'href="([^"#:]+)"', html):
        assert (tmp_path / link).is_file(), link


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--targets", " , "], "names no target"),
        (["--targets", "model,bogus"], "unknown target 'bogus'"),
        (["--examples", "0"], "must be at least 1"),
        (["--targets", "agent:/nonexistent/agent", "--no-fuzz"], "cannot be started"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = synack("conformance", "--out", str(tmp_path), *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_the_matrix_for_linux_lwip_gvisor_and_slirp(tmp_path: Path) -> None:
    """What CI generates: all four targets, every check run, a fuzz budget each."""
    require_netns()
    for stack in ("lwip", "gvisor", "slirp"):
        require_stack(stack)
    targets = ("linux", "lwip", "gvisor", "slirp")
    data = matrix(tmp_path, "--targets", ",".join(targets), "--examples", "40",
                  "--budget", "10", "--shrink-time", "0")  # fmt: skip
    assert [t["target"] for t in data["targets"]] == list(targets)
    for column in data["targets"]:
        assert column["error"] is None, column
        results = column["results"]
        assert set(results) == {c.id for c in CHECKS}
        assert not {"not run", "crashed"} & {r["verdict"] for r in results.values()}
        # the handshake is the floor every real stack must clear
        assert results["handshake-passive"]["verdict"] == "conforms", column["target"]
        for result in results.values():
            if result["verdict"] in ("deviates", "flaky", "allowed"):
                assert (tmp_path / result["evidence"]).is_file()
        assert column["fuzz"]["examples"] > 0 and column["fuzz"]["failure"] is None
    # the kernel is the reference point: it implements RFC 5961
    assert verdicts(data, "linux")["rst-in-window"] == "allowed"
    # gVisor takes the right edge as inside the window (header.Acceptable): a RST at
    # exactly RCV.NXT+RCV.WND resets, one further is dropped (docs/stacks/gvisor.md 15)
    gvisor = verdicts(data, "gvisor")
    assert gvisor["rst-seq-right"] == "deviates"
    assert gvisor["rst-seq-right-plus-1"] == gvisor["rst-seq-right-1"] == "conforms"
    page = (tmp_path / "conformance.md").read_text()
    assert all(f"| {t} " in page or f" {t} |" in page for t in targets)


def test_the_documented_battery_is_the_battery() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "conformance.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = tuple(cells[1:4])
    assert rows == {c.id: (c.title, c.section, c.requirement) for c in CHECKS}
