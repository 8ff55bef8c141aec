"""The fault battery: targets that break down never pass, never hang, never leave processes.

Every case runs `synack fuzz` (or `synack conformance`) as a child process
with a hard timeout against tests/fault_agent.py, the reference model agent
with one fault chosen by argv: it hangs (alive, silent) at its hello, after
N commands, while hypothesis shrinks, on hypothesis's final replay or while
synack re-runs a finding; it lies (garbage lines, replies that belong to
another command, malformed numbers), floods (a line of 1 MiB, endless event
lines, endless packets), sends malformed packets, exits at a chosen or a
random moment, or ignores the end of its input and SIGTERM.

The verdict asked of each: exit status 2 (a target that breaks down, even
when findings were made and saved before it: the verdict is not complete),
exactly one `error:` line that names the problem, no traceback, a wall time
within the budget plus 30 s, and no process left whose argv holds the case's
marker.  Signals: SIGTERM during a fuzz campaign (an agent's, and the
kernel's) leaves the JSON report and the findings saved and exits 143;
Ctrl-C during a conformance run stops every target, writes the partial
matrix marked interrupted and exits 130; after SIGKILL of synack an agent
that ignores the end of its input dies too (PR_SET_PDEATHSIG).

No fixed sleeps: a case that needs the campaign under way waits for a file
the agent creates once it has been driven far enough (`--ready`), or for the
example database to fill, with a bounded poll.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synack.harness.common.exits import reset_signals_in_child

from .util import run_synack

FAULT_AGENT = Path(__file__).with_name("fault_agent.py")
BUDGET = 20.0
SLACK = 30.0  # the wall time a breakdown may add to the budget
QUICK = {"SYNACK_AGENT_REPLY_TIMEOUT": "3"}  # a hang costs 3 s, not the contract's 5 s


def marker() -> str:
    return f"synack-fault-{uuid.uuid4().hex[:12]}"


def agent(mark: str, *fault: str) -> str:
    return "agent:" + shlex.join([sys.executable, str(FAULT_AGENT), "--marker", mark, *fault])


def processes(mark: str) -> list[int]:
    """Live processes whose argv holds `mark` (a zombie's argv reads as empty)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if mark.encode() in argv:
            found.append(int(entry.name))
    return found


def poll(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition` became true within `timeout` seconds (checked every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def assert_no_leftovers(mark: str) -> None:
    # A process killed an instant ago may still be on its way out (PDEATHSIG).
    assert poll(lambda: not processes(mark), 5.0), f"left behind: {processes(mark)}"


def fuzz(
    tmp_path: Path, target: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = run_synack(
        "fuzz", "--target", target, "--examples", "400", "--budget", f"{BUDGET:g}",
        "--seed", "7", "--out", str(tmp_path / "out"), "--db", str(tmp_path / "db"),
        "--json", str(tmp_path / "report.json"), *extra,
        timeout=BUDGET + SLACK, cwd=tmp_path, env={**os.environ, **QUICK, **(env or {})},
    )  # fmt: skip
    return done, time.monotonic() - started


def assert_one_line_error(stderr: str, command: str, message: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"synack {command}: error")]
    assert len(errors) == 1, stderr
    assert message in errors[0], stderr


BREAKDOWNS = [
    # (id, fault argv, extra synack arguments, environment, what the error line says,
    #  whether a finding was made before the breakdown, and so must be saved)
    ("hang-at-hello", ["hang-hello"], [], {"SYNACK_AGENT_HELLO_TIMEOUT": "3"},
     "agent said nothing for 3 s", False),
    # issue 16: a silent pass (exit 0, "0 findings") before the fix, hypothesis swallowing it
    ("hang-mid-example", ["hang-after", "50"], [], {}, "agent said nothing for 3 s", False),
    ("hang-while-shrinking", ["--drop-resets", "hang-at-rst", "2"], [], {},
     "agent said nothing for 3 s", True),
    ("hang-on-final-replay", ["--drop-resets", "hang-at-rst", "2"], ["--shrink-time", "0"], {},
     "agent said nothing for 3 s", True),
    ("hang-replaying-a-finding", ["--drop-resets", "hang-at-rst", "3"],
     ["--shrink-time", "0", "--max-findings", "1"], {}, "while replaying a finding", True),
    ("garbage-lines", ["garbage-after", "20"], [], {},
     "agent broke the contract: reply 'banana 21", False),
    ("wrong-replies", ["wrong-after", "20"], [], {}, "reply 'accepted' to", False),
    ("malformed-number", ["number-after", "5"], [], {}, "reply 'ok 1e3' to 'send'", False),
    ("line-too-long", ["long-line-after", "20"], [], {}, "a line longer than 262144 bytes",
     False),
    ("event-flood", ["events-after", "20"], [], {}, "more than 64 event lines", False),
    ("packet-flood", ["flood-after", "20"], [], {}, "more than 256 packets in one step", False),
    ("packet-flood-instead-of-a-reply", ["flood-reply-after", "20"], [], {},
     "agent said nothing for 3 s (while it sent over 256 packets)", False),
    ("malformed-packets", ["malformed-after", "20"], [], {},
     "a malformed packet (TCP checksum", False),
    ("exit-mid-example", ["exit-after", "40"], [], {},
     "agent exited (status 3); its stderr says: fault_agent: simulated crash after 40", False),
    ("exit-at-random-1", ["exit-random", "1"], [], {}, "agent exited (status 3)", False),
    ("exit-at-random-2", ["exit-random", "2"], [], {}, "agent exited (status 3)", False),
    ("exit-after-findings", ["--drop-resets", "exit-after", "250"], [], {},
     "agent exited (status 3)", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "extra", "env", "message", "found_before"),
    [pytest.param(*case[1:], id=case[0]) for case in BREAKDOWNS],
)
def test_a_target_that_breaks_down_is_never_a_pass(
    tmp_path: Path,
    fault: list[str],
    extra: list[str],
    env: dict[str, str],
    message: str,
    found_before: bool,
) -> None:
    mark = marker()
    done, seconds = fuzz(tmp_path, agent(mark, *fault), *extra, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_line_error(done.stderr, "fuzz", message)
    assert seconds <= BUDGET + SLACK
    assert_no_leftovers(mark)
    if fault == ["hang-hello"]:
        return  # no campaign: nothing to report
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped"].startswith("the target failed") or "replaying" in done.stderr
    if found_before:
        assert report["findings"], done.stderr
        assert (tmp_path / "out" / "finding-01.json").is_file()
        assert "finding(s) made before it are saved" in done.stderr


def test_an_agent_that_ignores_the_end_of_its_input_is_killed(tmp_path: Path) -> None:
    mark = marker()
    done, seconds = fuzz(tmp_path, agent(mark, "ignore-eof"), "--examples", "10")
    assert done.returncode == 0, done.stderr  # the model behind it is right
    assert seconds <= BUDGET + SLACK
    assert_no_leftovers(mark)


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "synack.harness.cli", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=reset_signals_in_child,
    )


def _stop(proc: subprocess.Popen[str], signum: int, timeout: float) -> tuple[str, str, float]:
    started = time.monotonic()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"synack did not stop within {timeout} s of signal {signum}: {err}")
    return out, err, time.monotonic() - started


def test_sigterm_during_an_agent_campaign_saves_and_exits_143(tmp_path: Path) -> None:
    mark, ready = marker(), tmp_path / "ready"
    target = agent(mark, "--drop-resets", "--ready", str(ready), "--ready-at-rst", "3", "none")
    proc = _start(tmp_path, "fuzz", "--target", target, "--examples", "5000", "--budget", "120",
                  "--out", "out", "--json", "report.json", "--db", "db")  # fmt: skip
    assert poll(ready.exists, 30), "the agent was never driven to its third RST"
    _, err, seconds = _stop(proc, signal.SIGTERM, 30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and seconds < 15
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped"] == "interrupted" and report["findings"], err
    assert (tmp_path / "out" / "finding-01.json").is_file()
    assert_no_leftovers(mark)


@pytest.mark.skipif(os.geteuid() != 0, reason="the linux target needs root")
def test_sigterm_during_a_linux_campaign_saves_and_exits_143(tmp_path: Path) -> None:
    proc = _start(tmp_path, "fuzz", "--target", "linux", "--budget", "120", "--examples",
                  "5000", "--json", "r.json", "--out", "f", "--db", "db")  # fmt: skip
    # The example database fills with the first divergence (linux is not rfc9293).
    db = tmp_path / "db"
    assert poll(lambda: db.is_dir() and any(p.is_file() for p in db.rglob("*")), 60)
    _, err, _ = _stop(proc, signal.SIGTERM, 60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["stopped"] == "interrupted"
    assert report["findings"] and (tmp_path / "f" / "finding-01.json").is_file(), err


def test_after_sigkill_of_synack_the_agent_dies_too(tmp_path: Path) -> None:
    mark, ready = marker(), tmp_path / "ready"
    target = agent(mark, "--ready", str(ready), "--ready-after", "10", "ignore-eof")
    proc = _start(tmp_path, "fuzz", "--target", target, "--examples", "5000", "--budget", "120",
                  "--out", "out", "--db", "db")  # fmt: skip
    assert poll(ready.exists, 30), "the agent was never driven ten commands"
    assert processes(mark)
    proc.kill()
    proc.communicate(timeout=10)
    assert_no_leftovers(mark)


def _matrix(out: Path) -> Any:
    data = json.loads((out / "conformance.json").read_text())
    assert (out / "conformance.md").is_file() and (out / "conformance.html").is_file()
    return data


def test_conformance_with_a_crashing_agent(tmp_path: Path) -> None:
    mark = marker()
    targets = f"{agent(mark, 'exit-after', '30')},model"
    started = time.monotonic()
    done = run_synack("conformance", "--targets", targets, "--no-fuzz", "--out", "m",
                      timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_line_error(done.stderr, "conformance", "broke down in")
    assert "agent exited (status 3)" in done.stderr
    assert time.monotonic() - started <= 60
    data = _matrix(tmp_path / "m")
    agent_col, model_col = data["targets"]
    verdicts = [r["verdict"] for r in agent_col["results"].values()]
    assert "crashed" in verdicts and agent_col["error"]
    assert all(r["verdict"] != "not run" for r in model_col["results"].values())
    assert data["interrupted"] is None
    assert_no_leftovers(mark)


def test_ctrl_c_stops_conformance_and_writes_the_partial_matrix(tmp_path: Path) -> None:
    mark, ready = marker(), tmp_path / "ready"
    target = agent(mark, "--ready", str(ready), "--ready-after", "20", "none")
    proc = _start(tmp_path, "conformance", "--targets", f"{target},model", "--examples",
                  "5000", "--budget", "120", "--out", "m")  # fmt: skip
    assert poll(ready.exists, 30), "the agent was never driven twenty commands"
    _, err, seconds = _stop(proc, signal.SIGINT, 30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert seconds < 15
    data = _matrix(tmp_path / "m")
    assert data["interrupted"] == "SIGINT"
    columns = data["targets"]
    assert [col["target"] for col in columns] == [target]
    assert "Interrupted" in (tmp_path / "m" / "conformance.md").read_text()
    assert "Interrupted" in (tmp_path / "m" / "conformance.html").read_text()
    assert_no_leftovers(mark)
