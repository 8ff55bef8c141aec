"""model/ is the pure specification: no I/O, no clock, no randomness, no engines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MODEL = Path(__file__).resolve().parent.parent / "model"
ALLOWED_MODULES = {"__future__", "dataclasses", "enum", "typing", "collections.abc", "bisect"}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "hash", "id"}
# hash() varies with PYTHONHASHSEED, so no behaviour may depend on it; values.py
# only implements __hash__ for dictionary look-ups.
ALLOWED_CALLS = {"values.py": {"hash"}}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_model_imports_only_the_standard_library_basics() -> None:
    for path in sorted(MODEL.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        extra = _imports(tree) - ALLOWED_MODULES
        assert not extra, f"{path.name} imports {sorted(extra)}"
        calls = {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        bad = calls & FORBIDDEN_CALLS - ALLOWED_CALLS.get(path.name, set())
        assert not bad, f"{path.name} calls {sorted(bad)}"


def test_importing_the_model_loads_no_engine() -> None:
    code = (
        "import sys, synack.model, synack.model.scenarios;"
        "bad = [m for m in ('z3', 'networkx', 'hypothesis', 'synack.harness') if m in sys.modules];"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
