"""The `synack` command line, run as a user runs it (the installed console script)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from synack.harness.cli import COMMANDS, after_unwritten
from synack.harness.common.exits import reset_signals_in_child
from synack.model.config import Profile, Variant
from synack.model.scenarios import SCENARIOS

from .util import REQUIRED_SCENARIOS, wait_for_output


def synack(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the console script installed next to this Python (the venv's `synack`)."""
    exe = Path(sys.executable).parent / "synack"
    assert exe.exists(), f"the synack console script is not installed at {exe}"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("what", "names"),
    [
        ("scenarios", list(SCENARIOS)),
        ("profiles", [p.value for p in Profile]),
        ("variants", [v.value for v in Variant]),
    ],
)
def test_list_prints_each_name_with_a_description(what: str, names: list[str]) -> None:
    result = synack("list", what)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == names
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines), "a description per name"


def test_list_scenarios_names_the_required_ones() -> None:
    out = synack("list", "scenarios").stdout
    for name in REQUIRED_SCENARIOS:
        assert f"{name} " in out


def test_profiles_verbose_cites_sources() -> None:
    out = synack("list", "profiles", "--verbose").stdout
    assert "RFC 5961" in out and "source:" in out


@pytest.mark.parametrize(
    "args", [(), ("list",), ("list", "bogus"), ("frobnicate",), ("list", "scenarios", "--nope")]
)
def test_bad_usage_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = synack(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("synack: error:")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_states_the_exit_status_contract() -> None:
    text = " ".join(synack("--help").stdout.split())
    for status in ("0 all good", "1 a verdict", "2 bad usage", "3 unknown", "4 an internal"):
        assert status in text
    assert "130 / 143" in text


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_states_its_exit_statuses_in_the_same_words(command: str) -> None:
    result = synack(command, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Exit status: 0 " in text and "2 bad usage" in text
    assert "4 an internal error; 130 / 143 interrupted" in text and "See synack --help" in text


@pytest.mark.parametrize(
    ("unwritten", "status", "expected"),
    [((), 0, 0), (("x.json",), 0, 2), (("x.json",), 3, 2), (("x.json",), 1, 1), (("-",), 130, 130)],
)
def test_a_report_that_could_not_be_written_turns_only_a_clean_run_into_2(
    unwritten: tuple[str, ...], status: int, expected: int
) -> None:
    assert after_unwritten(status, unwritten) == expected


def test_ctrl_c_works_when_synack_starts_with_sigint_ignored(tmp_path: Path) -> None:
    """As from a non-interactive shell's background job: SIGINT arrives ignored."""

    def ignore_sigint() -> None:
        reset_signals_in_child()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    exe = Path(sys.executable).parent / "synack"
    proc = subprocess.Popen(
        [str(exe), "check", "--scenario", "lifecycle", "--eager-timers"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "SYNACK_PROGRESS": "lines"},
        preexec_fn=ignore_sigint,
    )
    assert proc.stderr is not None
    try:
        wait_for_output(proc.stderr, b"synack check: exploring lifecycle", timeout=120)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert b"interrupted" in out and b"Traceback" not in err
