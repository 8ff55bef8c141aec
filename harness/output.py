"""Writing reports: one place for `--json FILE|-`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPORTS = Path(".synack") / "reports"
"""Where each command keeps its latest report (project-local); `synack docs` shows them."""


def save_latest(command: str, report: object) -> None:
    """Keep `report` as the latest of `command` in REPORTS; a read-only tree is no error."""
    try:
        REPORTS.mkdir(parents=True, exist_ok=True)
        (REPORTS / f"{command}.json").write_text(json.dumps(report, indent=2) + "\n")
    except OSError:
        pass


def write_json(target: str | None, report: object) -> None:
    """Write `report` as JSON to the file `target`, to stdout for '-', nowhere for None."""
    if not target:
        return
    text = json.dumps(report, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).write_text(text)
