"""`synack prove` time: this tree, and optionally another revision side by side.

Run on demand:   .venv/bin/python benchmarks/bench_prove.py [--quick] [--against REV]
                 [--rounds N] [--json FILE]

Each run is `synack prove` (rfc9293; --quick: three sequence-arithmetic
lemmas, seconds, no induction) in a fresh subprocess.  With --against,
the revision is checked out in a temporary git worktree and the two
trees run alternately, round after
round, so that both see the same machine load; the figures are the
medians of wall time and of CPU time (the process and its workers: the
induction runs in worker processes).  CPU time is the fairer comparison
on a loaded machine.  Not a test: nothing asserts on these figures.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synack.harness.common.validate import positive_int
from synack.harness.output import write_json

ROOT = Path(__file__).resolve().parent.parent
QUICK_CLAIMS = ("seq-order-total", "acceptability-sound", "acceptability-complete")

# The child imports synack from the tree given, not from the editable install.
CHILD = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in repr(h)]
sys.path_importer_cache.clear()
sys.path.insert(0, sys.argv[1])
import synack.harness
assert synack.harness.__path__[0].startswith(sys.argv[1]), synack.harness.__path__
from synack.harness.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _package_view(tree: Path, into: Path) -> Path:
    """A folder holding `synack/` whose parts link to `tree`'s model/, properties/, harness/."""
    package = into / "synack"
    package.mkdir(parents=True)
    for part in ("model", "properties", "harness"):
        (package / part).symlink_to(tree / part)
    return into


def _run(view: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `synack prove` in a subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(view), "prove", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"bench_prove: synack prove exited {done.returncode}: {done.stderr[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few claims only (seconds)")
    parser.add_argument("--against", metavar="REV", help="a git revision to time side by side")
    parser.add_argument(
        "--rounds", type=positive_int, default=None, help="runs of each tree (3; quick 1)"
    )
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    prove_args = ["--json", "/dev/null"]
    if args.quick:
        for claim in QUICK_CLAIMS:
            prove_args += ["--property", claim]
    with tempfile.TemporaryDirectory(prefix="synack-bench-prove-") as tmp:
        trees = {"this tree": _package_view(ROOT, Path(tmp) / "this")}
        if args.against:
            worktree = Path(tmp) / "against-tree"
            add = ["worktree", "add", "--detach", str(worktree), args.against]
            done = subprocess.run(["git", "-C", str(ROOT), *add], capture_output=True, text=True)
            if done.returncode != 0:
                reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
                print(f"bench_prove: cannot check out {args.against!r}: {reason}", file=sys.stderr)
                return 2
            trees[args.against] = _package_view(worktree, Path(tmp) / "against")
        try:
            figures = _measure(trees, prove_args, rounds)
        finally:
            if args.against:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                    check=False,
                    capture_output=True,
                )
    _print(figures)
    write_json(args.json, {"rounds": rounds, "quick": args.quick, "trees": figures})
    return 0


def _measure(
    trees: dict[str, Path], prove_args: list[str], rounds: int
) -> dict[str, dict[str, object]]:
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, view in trees.items():  # alternately: both trees see the same load
            times[name].append(_run(view, prove_args))
    return {
        name: {
            "wall_median": round(statistics.median(w for w, _ in runs), 2),
            "cpu_median": round(statistics.median(c for _, c in runs), 2),
            "wall": [round(w, 2) for w, _ in runs],
            "cpu": [round(c, 2) for _, c in runs],
        }
        for name, runs in times.items()
    }


def _print(figures: dict[str, dict[str, object]]) -> None:
    print(f"{'tree':<16} {'wall (median)':>14} {'cpu (median)':>13}  runs (wall s)")
    for name, f in figures.items():
        print(f"{name:<16} {f['wall_median']:>14} {f['cpu_median']:>13}  {f['wall']}")
    if len(figures) == 2:
        (_, a), (_, b) = figures.items()
        ratio = float(str(a["cpu_median"])) / max(float(str(b["cpu_median"])), 1e-9)
        print(f"this tree / other (cpu): {ratio:.3f}")


if __name__ == "__main__":
    sys.exit(main())
