"""The shape of the code: harness/ in wings without import loops, and small files.

The import graph is read from the sources (every `import` and `from`
statement, lazy ones inside functions included, plus the command modules
cli.py loads by name), so a loop hidden in a function body counts too.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import networkx as nx
import pytest

from synack.harness import cli
from synack.properties.catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "harness"
LAYERS = ("model", "properties", "harness")
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 80

WINGS = {"common", "check", "prove", "fuzz", "site"}
# What each wing may import besides itself (and model/, properties/).
MAY_IMPORT = {
    "common": set(),
    "output": {"common"},
    "check": {"common", "output"},
    "prove": {"common", "output"},
    "fuzz": {"common", "output", "check"},
    "site": {"common", "output", "check"},
    "cli": {"common", "output", "check", "prove", "fuzz", "site"},
}


def module_name(path: Path) -> str:
    parts = ["synack", "harness", *path.relative_to(HARNESS).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every synack.harness module `path` names in an import (absolute or relative)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("synack.harness")}


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    sources = sorted(HARNESS.rglob("*.py"))
    modules = {module_name(p) for p in sources}
    for path in sources:
        me = module_name(path)
        graph.add_node(me)
        for name in imported(path) & modules - {me}:
            graph.add_edge(me, name)
    # cli.py loads each command's module by name (importlib): edges too.
    for module, _, _ in cli.COMMANDS.values():
        graph.add_edge("synack.harness.cli", f"synack.harness.{module}")
    return graph


def wing(module: str) -> str:
    return module.split(".")[2] if module.count(".") >= 2 else "(package)"


def test_the_harness_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the sources were not found"
    # Imports inside functions count: the registry opens the kernel target lazily.
    targets = "synack.harness.fuzz.targets"
    assert graph.has_edge(f"{targets}.registry", f"{targets}.linux")
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_each_wing_imports_only_the_layers_below_it() -> None:
    upward = sorted(
        f"{u} -> {v}"
        for u, v in import_graph().edges
        if wing(v) not in {wing(u), "(package)"} and wing(v) not in MAY_IMPORT[wing(u)]
    )
    assert upward == []


def test_the_harness_top_level_holds_only_cli_output_and_the_wings() -> None:
    top = {p.name for p in HARNESS.iterdir() if p.name != "__pycache__"}
    assert top == {"__init__.py", "cli.py", "output.py", *WINGS}
    for name in WINGS:
        assert (HARNESS / name / "__init__.py").exists()


def test_the_layers_below_import_nothing_above() -> None:
    for layer, forbidden in (("model", ("properties", "harness")), ("properties", ("harness",))):
        for path in sorted((ROOT / layer).rglob("*.py")):
            text = path.read_text()
            for above in forbidden:
                assert f"synack.{above}" not in text, f"{path.relative_to(ROOT)} imports {above}"


def _sources() -> list[Path]:
    return [p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))]


def test_no_source_file_is_longer_than_800_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_function_is_longer_than_80_lines() -> None:
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert long == {}


@pytest.mark.parametrize("source", ["check/explore.py", "check/counterexample.py"])
def test_the_explorer_names_no_property(source: str) -> None:
    """Properties decide themselves: the explorer and the replay never test a name."""
    text = (HARNESS / source).read_text()
    named = [p.name for p in CATALOGUE if f'"{p.name}"' in text or f"'{p.name}'" in text]
    assert named == []


def test_the_architecture_picture_draws_the_real_imports() -> None:
    """docs/ARCHITECTURE.md's diagram: its arrows are exactly the wings' imports."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    drawn = set(re.findall(r"^  ([a-z]+) --> ([a-z]+)$", text, re.MULTILINE))
    real = {
        (wing(u), wing(v))
        for u, v in import_graph().edges
        if wing(u) != wing(v) and "(package)" not in (wing(u), wing(v))
    }
    assert drawn == real


def test_every_package_is_installed() -> None:
    """pyproject.toml lists every package folder (a wheel leaves out the unlisted)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    found = {
        ".".join(["synack", layer, *p.parent.relative_to(ROOT / layer).parts])
        for layer in LAYERS
        for p in (ROOT / layer).rglob("__init__.py")
    }
    assert listed == found
