"""Shared by the benchmark scripts: write a report as JSON to a file or stdout."""

from __future__ import annotations

import json


def write_json(target: str | None, report: object) -> None:
    """Write `report` to the file `target`, to stdout for '-', nowhere for None."""
    if not target:
        return
    text = json.dumps(report, indent=2)
    if target == "-":
        print(text)
    else:
        with open(target, "w") as fh:
            fh.write(text + "\n")
