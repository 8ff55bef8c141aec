"""`synack fuzz --target python:MODULE:FACTORY`: a user's own stack, in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def fuzz(tmp_path: Path, target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synack.harness.cli", "fuzz", "--target", target,
         "--out", str(tmp_path / "out"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,  # the module is found from the current directory
    )  # fmt: skip


def test_own_correct_stack_runs_clean(tmp_path: Path) -> None:
    done = fuzz(tmp_path, "python:tests.own_stack:make", "--examples", "300", "--seed", "3")
    assert done.returncode == 0, done.stderr


def test_seeded_bug_in_own_stack_is_found_and_replays(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = fuzz(
        tmp_path,
        "python:tests.own_stack:drops_resets",
        "--examples", "2000", "--budget", "120", "--json", str(report),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    findings = json.loads(report.read_text())["findings"]
    assert findings
    assert any("RST" in json.dumps(f["divergence"]) for f in findings)
    case = next((tmp_path / "out").glob("*.json"))
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "synack.harness.cli",
            "replay",
            str(case),
            "--target",
            "python:tests.own_stack:drops_resets",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert replay.returncode == 1, replay.stdout + replay.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("python:tests.no_such_module:make", "cannot import tests.no_such_module"),
        ("python:tests.own_stack:nothing", "has no callable nothing"),
        ("python:tests.own_stack", "python:MODULE:FACTORY"),
        ("python:tests.own_stack:Observation", "returned no Target"),
        # a target that breaks down mid-campaign: one line, exit 2 (no finding)
        ("python:tests.own_stack:DropsResets", "() raised AttributeError"),
    ],
)
def test_bad_python_targets_are_one_line_errors(tmp_path: Path, target: str, message: str) -> None:
    done = fuzz(tmp_path, target, "--examples", "5")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
