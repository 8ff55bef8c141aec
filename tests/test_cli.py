"""The `synack` command line, run as a user runs it (the installed console script)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from synack.model.config import Profile, Variant
from synack.model.scenarios import SCENARIOS

from .util import REQUIRED_SCENARIOS


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
