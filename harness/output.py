"""Writing reports: one place for `--json FILE|-`."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def write_json(target: str | None, report: object) -> None:
    """Write `report` as JSON to the file `target`, to stdout for '-', nowhere for None."""
    if not target:
        return
    text = json.dumps(report, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).write_text(text)
