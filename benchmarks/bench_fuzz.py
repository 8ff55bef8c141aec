"""Fuzzing throughput: examples/s and segments/s against `model` and `linux`.

Run on demand:   .venv/bin/python benchmarks/bench_fuzz.py [--quick] [--json FILE]

Two figures per target:

- *campaign*: a whole `synack fuzz` campaign (hypothesis generation,
  coverage steering, the oracle, the target; shrinking too, if something
  is found), without timer waits;
- *replay*: a fixed list of examples (drawn once by a campaign on the
  model) run straight through `run_example`: the harness and target
  speed without hypothesis, the figure the >= 100 examples/s target
  (>= 1,000 segments/s) for Linux is about.

The Linux rows need root and /dev/net/tun; without them they are skipped
with the reason.  Not a test: nothing asserts on the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from synack.harness.fuzz.fuzz import Example, run_example
from synack.harness.fuzz.fuzzcmd import oracle_config
from synack.harness.fuzz.fuzzing import fuzz
from synack.harness.fuzz.targets.base import Target
from synack.harness.fuzz.targets.netns import preflight
from synack.harness.fuzz.targets.registry import open_target
from synack.harness.output import write_json
from synack.model.config import Profile


def campaign_row(target: Target, name: str, examples: int, db: Path) -> dict[str, object]:
    cfg = oracle_config(target, Profile.LINUX)
    c = fuzz(target, cfg, examples, 600, 1, db / name, name, waits=False, max_findings=50)
    return {
        "target": name,
        "mode": "campaign",
        "examples": c.examples,
        "segments": c.segments,
        "seconds": round(c.seconds, 2),
        "examples_per_s": round(c.examples / c.seconds, 1),
        "segments_per_s": round(c.segments / c.seconds, 1),
        "findings": len(c.findings),
    }


def replay_row(target: Target, name: str, examples: list[Example]) -> dict[str, object]:
    cfg = oracle_config(target, Profile.LINUX)
    segments = divergent = 0
    start = time.perf_counter()
    for example in examples:
        run = run_example(target, example, cfg)
        segments += run.segments
        divergent += run.divergence is not None
    seconds = time.perf_counter() - start
    return {
        "target": name,
        "mode": "replay",
        "examples": len(examples),
        "segments": segments,
        "seconds": round(seconds, 2),
        "examples_per_s": round(len(examples) / seconds, 1),
        "segments_per_s": round(segments / seconds, 1),
        "findings": divergent,
    }


def drawn_examples(count: int, db: Path) -> list[Example]:
    """Examples as a campaign on the model draws them (no waits)."""
    model = open_target("model", Profile.LINUX)
    kept: list[Example] = []
    cfg = oracle_config(model, Profile.LINUX)
    fuzz(
        model,
        cfg,
        count,
        600,
        2,
        db / "draw",
        "draw",
        waits=False,
        on_run=lambda r: kept.append(r.example),
    )
    return kept[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for CI")
    parser.add_argument("--json", metavar="FILE|-")
    args = parser.parse_args()
    count = 200 if args.quick else 2000
    rows: list[dict[str, object]] = []
    with TemporaryDirectory() as tmp:
        db = Path(tmp)
        examples = drawn_examples(count, db)
        model = open_target("model", Profile.LINUX)
        rows.append(campaign_row(model, "model", count, db))
        rows.append(replay_row(model, "model", examples))
        reason = preflight()
        if reason is None:
            linux = open_target("linux", Profile.LINUX)
            try:
                rows.append(campaign_row(linux, "linux", count, db))
                rows.append(replay_row(linux, "linux", examples))
            finally:
                linux.close()
        else:
            print(f"linux rows skipped: {reason}", file=sys.stderr)
    print(
        f"{'target':<7} {'mode':<9} {'examples':>8} {'seconds':>8} {'ex/s':>8} {'seg/s':>9} finds"
    )
    for row in rows:
        print(
            f"{row['target']:<7} {row['mode']:<9} {row['examples']:>8} {row['seconds']:>8} "
            f"{row['examples_per_s']:>8} {row['segments_per_s']:>9} {row['findings']:>5}"
        )
    write_json(args.json, {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
