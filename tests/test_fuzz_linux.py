"""The Linux kernel as a fuzz target (root and /dev/net/tun; CI has both)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from synack.harness.fuzz import findings
from synack.harness.fuzz.fuzz import (
    Action,
    Call,
    Example,
    Inject,
    Pick,
    Wait,
    allowed_text,
    allowed_variations,
    run_example,
)
from synack.harness.fuzz.fuzzcmd import oracle_config
from synack.harness.fuzz.fuzzing import fuzz
from synack.harness.fuzz.targets.base import CallName, Role
from synack.harness.fuzz.targets.linux import LinuxTarget
from synack.harness.fuzz.targets.pcap import read_pcap
from synack.model import Flags
from synack.model.config import Profile
from tests.test_fuzz import LIFECYCLE
from tests.util import require_netns, require_tool

EXACT = Pick("exact")
SYN, ACK, RST = int(Flags.SYN), int(Flags.ACK), int(Flags.RST)


@pytest.fixture(scope="module")
def linux() -> Iterator[LinuxTarget]:
    require_netns()
    target = LinuxTarget()
    yield target
    target.close()


def test_lifecycle_agrees_with_the_linux_profile(linux: LinuxTarget) -> None:
    run = run_example(linux, LIFECYCLE, oracle_config(linux, Profile.LINUX))
    assert run.divergence is None, findings.chart(run, windows=False)
    assert run.steps[-1].after == ("TIME-WAIT",)
    # Real packets were captured both ways, and they decode.
    assert sum(len(s.observed.packets) for s in run.steps) >= 12


RST_IN_WINDOW = Example(
    Role.PASSIVE,
    5000,
    0,
    (Inject(SYN, EXACT, EXACT), Inject(ACK, EXACT, EXACT), Inject(RST, Pick("window", 10), EXACT)),
)


def test_rfc5961_challenge_ack_is_an_rfc_allowed_variation_under_rfc9293(
    linux: LinuxTarget,
) -> None:
    run = run_example(linux, RST_IN_WINDOW, oracle_config(linux, Profile.RFC9293))
    assert run.divergence is None, findings.chart(run, windows=False)
    assert [str(s.flags) for s in run.steps[-2].observed.segments] == ["ACK"]
    assert allowed_variations(run) == {"rst-challenge": 1}
    assert "RFC 5961 3" in allowed_text(allowed_variations(run))
    rules = findings.linux_rules(run, oracle_config(linux, Profile.LINUX), linux.traits)
    assert rules is not None and [r.id for r in rules] == ["rst-challenge"]
    # The linux profile says exactly this, with nothing to allow.
    again = run_example(linux, RST_IN_WINDOW, oracle_config(linux, Profile.LINUX))
    assert again.divergence is None, findings.chart(again, windows=False)
    assert not allowed_variations(again)


def test_a_syn_retransmission_is_a_timer_firing(linux: LinuxTarget) -> None:
    example = Example(Role.ACTIVE, 0, 0, (Wait(),))
    run = run_example(linux, example, oracle_config(linux, Profile.LINUX))
    assert run.divergence is None, findings.chart(run, windows=False)
    assert [str(s.flags) for s in run.steps[1].observed.segments][:1] == ["SYN"]


def test_linux_profile_campaign_has_no_finding(linux: LinuxTarget, tmp_path: Path) -> None:
    """1,000 generated examples: the linux profile explains everything the kernel does."""
    cfg = oracle_config(linux, Profile.LINUX)
    campaign = fuzz(linux, cfg, 1000, 600, 5, tmp_path / "db", "linux", waits=False)
    shown = [findings.chart(f.run, windows=False) for f in campaign.findings]
    assert not shown, "\n\n".join(shown)
    assert campaign.examples == 1000
    assert not [a for a in campaign.anomalies if "malformed" in a]


def test_rfc9293_campaign_findings_are_real_deviations(linux: LinuxTarget, tmp_path: Path) -> None:
    """Under rfc9293 the kernel's deviations are found; each re-runs to the same
    divergence, is explained by the linux profile's rule, and its pcap opens in tshark."""
    tshark = require_tool("tshark")
    cfg = oracle_config(linux, Profile.RFC9293)
    campaign = fuzz(linux, cfg, 300, 300, 5, tmp_path / "db", "linux", waits=False, max_findings=3)
    assert campaign.findings
    linux_cfg = oracle_config(linux, Profile.LINUX)
    for number, finding in enumerate(campaign.findings):
        run = finding.run
        again = run_example(linux, run.example, cfg)
        assert again.divergence is not None and again.signature() == run.signature()
        rules = findings.linux_rules(run, linux_cfg, linux.traits)
        assert rules, findings.chart(run, windows=False)  # a named rule explains it
        explanation = findings.explain(run.steps[-1], run, rules)
        assert explanation is not None and "RFC 9293" in explanation
        assert all(f"profile linux rule {r.id}: " in explanation for r in rules)
        findings.save(tmp_path, f"f{number}", run, "linux", Profile.RFC9293, None, False, False)
        pcap = tmp_path / f"f{number}.pcap"
        assert read_pcap(pcap)
        subprocess.run([tshark, "-r", str(pcap)], capture_output=True, timeout=60, check=True)


def test_fuzz_cli_against_linux_cleans_up(tmp_path: Path) -> None:
    require_netns()
    report = tmp_path / "r.json"
    result = subprocess.run(
        [sys.executable, "-m", "synack.harness.cli", "fuzz", "--target", "linux",
         "--profile", "linux", "--examples", "100", "--no-waits", "--seed", "1",
         "--out", str(tmp_path / "out"), "--db", str(tmp_path / "db"), "--json", str(report)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(report.read_text())
    assert data["examples"] >= 1
    for finding in data["findings"]:
        assert Path(finding["files"][1]).exists()
    # Nothing of the namespace is left on the host.
    assert subprocess.run(["ip", "link", "show", "synack0"], capture_output=True).returncode != 0


def test_malformed_or_foreign_packets_are_anomalies_not_crashes(linux: LinuxTarget) -> None:
    from synack.harness.fuzz.targets.wire import Packet, encode
    from synack.model import Segment

    linux.start(Role.PASSIVE, 0)
    linux.collect(0)
    good = encode(
        Packet("198.18.0.1", "198.18.0.2", linux.port, linux.peer_port, Segment(Flags.ACK, 1))
    )
    assert isinstance(linux.parse(good), Segment)
    broken = bytearray(good)
    broken[-1] ^= 0xFF  # the TCP checksum no longer matches
    assert "malformed packet" in str(linux.parse(bytes(broken)))
    assert "malformed packet" in str(linux.parse(b"\x45garbage"))
    other = encode(Packet("198.18.0.1", "198.18.0.2", 1, 2, Segment(Flags.ACK, 1)))
    assert "another connection" in str(linux.parse(other))


FIN_ACK, SYN_FIN = int(Flags.FIN | Flags.ACK), int(Flags.SYN | Flags.FIN)
FIN_RST = int(Flags.FIN | Flags.RST)
ESTABLISH = (Inject(SYN, EXACT, EXACT), Inject(ACK, EXACT, EXACT))
PEER_FIN = (*ESTABLISH, Inject(FIN_ACK, EXACT, EXACT))  # the target is in CLOSE-WAIT


def passive(*actions: Action) -> Example:
    return Example(Role.PASSIVE, 7000, 0, actions)


DEVIATIONS = {
    # (the example, the linux profile's rules that explain what the kernel does)
    # RFC 5961 5.2 with Linux's bound: a passive connection has acked no octet
    # of ours, so an ACK one below SND.UNA gets a challenge ACK.
    "right-edge-accepted": (
        passive(*ESTABLISH, Inject(ACK, Pick("outside", 0), EXACT)),
        {"tcp-sequence"},
    ),
    "flagless-dropped": (
        passive(*ESTABLISH, Inject(0, Pick("outside", 2), EXACT)),
        {"flagless-dropped"},
    ),
    "syn-fin-in-listen": (passive(Inject(SYN_FIN, EXACT, EXACT)), {"listen-syn-fin"}),
    # CLOSING: the peer's retransmitted FIN that ACKs ours moves to TIME-WAIT
    # without an ACK (the documented deviation of time-wait-reacks-fin).
    "closing-fin-completes-silently": (
        passive(
            *ESTABLISH,
            Call(CallName.SHUTDOWN),
            Inject(FIN_ACK, EXACT, Pick("una")),
            Inject(FIN_ACK, Pick("old", 0), EXACT),
        ),
        {"tcp-sequence"},  # the old FIN reaches RCV.NXT: acceptable
    ),
    "second-fin-ignored": (
        passive(*PEER_FIN, Inject(FIN_ACK, EXACT, EXACT)),
        {"fin-received-ignores"},
    ),
    # A RST at the FIN's own number resets CLOSE-WAIT; the kernel answers the
    # next ACK from CLOSED.
    "rst-at-the-fin-resets": (
        passive(*PEER_FIN, Inject(RST, Pick("old", 0), EXACT), Inject(ACK, EXACT, EXACT)),
        {"reset-at-fin"},
    ),
    # A FIN,RST at the right edge: in the window for Linux, so a challenge ACK
    # (the FIN may end beyond the window even while the queue holds the FIN).
    "fin-rst-at-the-edge-challenged": (
        passive(*PEER_FIN, Inject(FIN_RST, Pick("outside", 0), EXACT)),
        {"tcp-sequence", "rst-challenge"},
    ),
    "retransmitted-syn-gets-the-synack": (
        passive(Inject(SYN, EXACT, EXACT), Inject(SYN, Pick("old", 0), EXACT)),
        {"request-socket", "retransmitted-syn"},
    ),
    # A retransmission timeout resends the text with the FIN collapsed into it.
    # The simultaneous-open SYN,ACK passes Linux's SYN check only when bare.
    "simultaneous-synack-with-text-challenged": (
        Example(
            Role.ACTIVE,
            7000,
            0,
            (Inject(SYN, EXACT, EXACT), Inject(SYN | ACK, Pick("old", 0), EXACT, 1)),
        ),
        {"header-syn", "syn-challenge"},
    ),
    # A SYN,ACK at IRS with text makes the request socket's child (a full socket in
    # SYN-RECEIVED): a SYN after it gets a challenge ACK, not the embryonic reset.
    "request-socket-child-challenges-a-syn": (
        passive(
            Inject(SYN, EXACT, EXACT),
            Inject(SYN | ACK, Pick("old", 0), EXACT, 1),
            Inject(SYN, EXACT, EXACT),
            Inject(ACK, EXACT, EXACT, 2),
        ),
        {"request-socket"},  # what the rfc9293 run reached: its divergence at the SYN,ACK
    ),
    "simultaneous-open-ack-of-nothing": (
        Example(
            Role.ACTIVE,
            7000,
            0,
            (
                Inject(SYN, EXACT, EXACT),
                Inject(ACK, EXACT, Pick("una")),
                Inject(ACK, EXACT, EXACT, 3),
            ),
        ),
        {"simultaneous-ack-of-nothing"},
    ),
}

ALLOWED = {
    # (the example, the RFC-allowed variations rfc9293 finds: no finding, counted)
    # RFC 5961 5.2 with Linux's bound: a passive connection has acked no octet
    # of ours, so an ACK one below SND.UNA gets a challenge ACK.
    "old-ack-challenged": (
        passive(*ESTABLISH, Inject(ACK, EXACT, Pick("old", 0))),
        {"old-ack-challenge"},
    ),
    "retransmission-collapses-the-fin": (
        passive(*ESTABLISH, Call(CallName.SEND, 4), Call(CallName.SHUTDOWN), Wait()),
        {"retransmit-collapse"},
    ),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_rfc_allowed_linux_behaviour_is_no_finding_under_rfc9293(
    linux: LinuxTarget, name: str
) -> None:
    example, expected = ALLOWED[name]
    as_linux = run_example(linux, example, oracle_config(linux, Profile.LINUX))
    assert as_linux.divergence is None, findings.chart(as_linux, windows=False)
    as_rfc = run_example(linux, example, oracle_config(linux, Profile.RFC9293))
    assert as_rfc.divergence is None, findings.chart(as_rfc, windows=False)
    assert set(allowed_variations(as_rfc)) == expected
    rules = findings.linux_rules(as_rfc, oracle_config(linux, Profile.LINUX), linux.traits)
    assert rules is not None and {r.id for r in rules} == expected


CONSISTENT = {
    # The fuzzer's application has closed its listener: a new SYN in TIME-WAIT
    # of a passive connection gets the TIME-WAIT ACK, as without a listener.
    "time-wait-syn-without-listener": (
        passive(
            *ESTABLISH,
            Call(CallName.SHUTDOWN),
            Inject(FIN_ACK, EXACT, EXACT),
            Inject(SYN, Pick("future", 5), EXACT),
        ),
        None,
    ),
    # Header prediction may take text past a too-old ACK, or not (either is allowed).
    "header-prediction-or-challenge": (
        passive(*ESTABLISH, Inject(ACK, EXACT, Pick("old", 5000), 3), Inject(ACK, EXACT, EXACT, 2)),
        None,
    ),
    # Reading text frees buffer space, but the right edge stays where the kernel
    # last advertised it (rcv_wup + rcv_wnd) until it sends again.
    "right-edge-stays-after-a-read": (
        passive(
            *ESTABLISH,
            Inject(ACK, EXACT, EXACT, 3),
            Call(CallName.RECV),
            Inject(ACK, Pick("outside", 0), EXACT),
            Inject(ACK, Pick("outside", 1), EXACT),
        ),
        None,
    ),
    # 6.17+: a RST with text ending beyond the window is dropped while the FIN is
    # unread (RFC 9293 drops it too); once it is read, a challenge ACK.
    "queue-holds-the-fin": (
        passive(*PEER_FIN, Inject(RST, Pick("outside", 0), EXACT, 1)),
        {"tcp-sequence-queue"},
    ),
    "queue-empty-again": (
        passive(*PEER_FIN, Call(CallName.RECV), Inject(RST, Pick("outside", 0), EXACT, 1)),
        {"tcp-sequence", "rst-challenge"},
    ),
}


@pytest.mark.parametrize("name", sorted(DEVIATIONS))
def test_linux_deviation_is_in_the_linux_profile_and_not_in_rfc9293(
    linux: LinuxTarget, name: str
) -> None:
    example, expected = DEVIATIONS[name]
    as_linux = run_example(linux, example, oracle_config(linux, Profile.LINUX))
    assert as_linux.divergence is None, findings.chart(as_linux, windows=False)
    as_rfc = run_example(linux, example, oracle_config(linux, Profile.RFC9293))
    assert as_rfc.divergence is not None, findings.chart(as_rfc, windows=False)
    rules = findings.linux_rules(as_rfc, oracle_config(linux, Profile.LINUX), linux.traits)
    assert rules is not None and {r.id for r in rules} == expected
    explanation = findings.explain(as_rfc.steps[-1], as_rfc, rules)
    assert explanation is not None and "RFC 9293 3.10" in explanation
    assert all(f"profile linux rule {r.id}: " in explanation for r in rules)


@pytest.mark.parametrize("name", sorted(CONSISTENT))
def test_linux_profile_describes_the_kernel(linux: LinuxTarget, name: str) -> None:
    example, expected = CONSISTENT[name]
    cfg = oracle_config(linux, Profile.LINUX)
    for _ in range(3):  # header prediction depends on the socket's memory: try it more than once
        run = run_example(linux, example, cfg)
        assert run.divergence is None, findings.chart(run, windows=False)
    if expected is not None:
        rules = findings.linux_rules(run, cfg, linux.traits)
        assert rules is not None and {r.id for r in rules} == expected
