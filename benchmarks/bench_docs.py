"""How long `synack docs` takes: cold (empty cache) and warm (everything cached).

Run on demand:   .venv/bin/python benchmarks/bench_docs.py [--quick] [--json FILE]

Rows: a cold build of every profile (`--profile all`), a cold default
build (rfc9293 explored, as docs/generated), and a warm rebuild of all
profiles from the cache the first row filled.  Each row runs the real
command line (`synack docs`) in a fresh process.  `--quick` (CI) times
only the endpoint explorations and one cold scenario page set, to show the
pieces work and how fast; nothing asserts on the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from synack.harness.output import write_json
from synack.harness.site.docdata import Results, run_job
from synack.model.config import Profile

SYNACK = Path(sys.executable).parent / "synack"


def build(out: Path, cache: Path, *args: str) -> float:
    start = time.monotonic()
    subprocess.run(
        [str(SYNACK), "docs", "--out", str(out), "--cache", str(cache), "--no-reports", *args],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    parser.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.quick:
            for profile in Profile:
                start = time.monotonic()
                data = run_job(("endpoint", profile.value))
                rows.append(
                    {
                        "row": f"endpoint exploration, {profile.value}",
                        "seconds": round(time.monotonic() - start, 2),
                        "tcbs": data["tcbs"],
                        "transition kinds": len(data["transitions"]),
                    }
                )
            results = Results(root / "cache")
            start = time.monotonic()
            results.run([("scenario", "handshake", "rfc9293"), ("scenario", "refused", "linux")])
            rows.append(
                {"row": "two small scenarios", "seconds": round(time.monotonic() - start, 2)}
            )
        else:
            cache = root / "cache"
            every = build(root / "all", cache, "--profile", "all")
            rows.append({"row": "cold, --profile all", "seconds": round(every, 1)})
            one = build(root / "one", root / "cache-one")
            rows.append({"row": "cold, default (rfc9293)", "seconds": round(one, 1)})
            warm = build(root / "warm", cache, "--profile", "all")
            rows.append({"row": "warm, --profile all", "seconds": round(warm, 1)})
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
