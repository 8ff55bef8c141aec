"""Diagrams as text: Graphviz DOT (rendered to SVG by `dot`), Mermaid, and SVG
sequence diagrams drawn here.

Everything is generated from data the engines computed (transitions of
the endpoint exploration, explored state graphs, replayed
counterexamples); nothing is drawn by hand, so a diagram cannot drift
from the specification.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from html import escape

from synack.harness.check.counterexample import Exchange
from synack.harness.common.children import die_with_parent
from synack.harness.site.endpoint_graph import Transition
from synack.model.system import Side
from synack.model.types import State

DOT_TIMEOUT = 120.0
RANKS: tuple[tuple[State, ...], ...] = (
    (State.CLOSED,),
    (State.LISTEN,),
    (State.SYN_RECEIVED, State.SYN_SENT),
    (State.ESTABLISHED,),
    (State.FIN_WAIT_1, State.CLOSE_WAIT),
    (State.FIN_WAIT_2, State.CLOSING, State.LAST_ACK),
    (State.TIME_WAIT,),
)
"""Figure 5's layout, row by row."""


class GraphvizMissing(RuntimeError):
    """`dot` is not installed (Debian: apt-get install graphviz)."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def diagram_label(t: Transition) -> str:
    """Figure 5's label: the event, and the segments sent (signals are in the table)."""
    actions = [a for a in t.outputs.split("; ") if not a.startswith("signal")]
    return f"{t.event} / {'; '.join(actions) or 'x'}"


def edge_labels(transitions: Iterable[Transition]) -> dict[tuple[State, State], list[str]]:
    """Distinct labels per (state, next state), in a stable order."""
    labels: dict[tuple[State, State], dict[str, None]] = defaultdict(dict)
    for t in transitions:
        labels[(t.state, t.next_state)][diagram_label(t)] = None
    return {edge: list(found) for edge, found in labels.items()}


def state_diagram_dot(transitions: Sequence[Transition], title: str) -> str:
    """All eleven states (Figure 5's layout) and one edge per state change."""
    lines = [
        "digraph tcp {",
        f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; fontsize=18;",
        "  rankdir=TB; nodesep=0.6; ranksep=0.7;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
        "fontname=Helvetica, fontsize=14];",
        '  edge [fontname=Helvetica, fontsize=9, color="#445566"];',
    ]
    for rank in RANKS:
        names = " ".join(_quote(str(s)) for s in rank)
        lines.append(f"  {{ rank=same; {names} }}")
    for (source, target), labels in sorted(
        edge_labels(transitions).items(), key=lambda item: (str(item[0][0]), str(item[0][1]))
    ):
        label = "\\n".join(_escape_dot_label(x) for x in labels)
        lines.append(f'  {_quote(str(source))} -> {_quote(str(target))} [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape_dot_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _mermaid_id(state: State) -> str:
    return state.name


def state_diagram_mermaid(transitions: Sequence[Transition]) -> str:
    """The same diagram as a Mermaid stateDiagram (GitHub renders it)."""
    lines = ["stateDiagram-v2"]
    for state in State:
        lines.append(f'    state "{state}" as {_mermaid_id(state)}')
    lines.append(f"    [*] --> {_mermaid_id(State.CLOSED)}")
    for (source, target), labels in edge_labels(transitions).items():
        for label in labels:
            text = label.replace(":", " ").replace(";", ",")
            lines.append(f"    {_mermaid_id(source)} --> {_mermaid_id(target)} : {text}")
    return "\n".join(lines) + "\n"


def pair_dot(
    nodes: dict[tuple[str, str], int], edges: dict[tuple[str, str, str, str], int], title: str
) -> str:
    """The explored graph projected onto (client state, server state) pairs."""
    lines = [
        "digraph pairs {",
        f"  label={_quote(title)}; labelloc=t; fontname=Helvetica;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f3f7ee", '
        "fontname=Helvetica, fontsize=11];",
        '  edge [color="#667788", fontname=Helvetica, fontsize=8];',
    ]
    for (client, server), count in sorted(nodes.items()):
        label = f"client {client}\\nserver {server}\\n{count:,} states"
        lines.append(f'  {_quote(client + "|" + server)} [label="{label}"];')
    for (c1, s1, c2, s2), count in sorted(edges.items()):
        lines.append(f'  {_quote(c1 + "|" + s1)} -> {_quote(c2 + "|" + s2)} [label="{count:,}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def pair_mermaid(edges: dict[tuple[str, str, str, str], int]) -> str:
    lines = ["stateDiagram-v2"]
    ids: dict[tuple[str, str], str] = {}
    for c1, s1, c2, s2 in sorted(edges):
        for pair in ((c1, s1), (c2, s2)):
            if pair not in ids:
                ids[pair] = f"p{len(ids)}"
                lines.append(f'    state "{pair[0]} / {pair[1]}" as {ids[pair]}')
    for (c1, s1, c2, s2), count in sorted(edges.items()):
        lines.append(f"    {ids[(c1, s1)]} --> {ids[(c2, s2)]} : {count}")
    return "\n".join(lines) + "\n"


def global_dot(
    states: Sequence[tuple[str, str, int]], edges: Sequence[tuple[int, int, str]], title: str
) -> str:
    """A whole (small) global state graph, states clustered by their endpoint pair.

    `states[i]` is (client state, server state, segments in flight) of node i.
    """
    lines = [
        "digraph global {",
        f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; compound=true;",
        "  node [shape=circle, width=0.3, fixedsize=true, fontsize=7, fontname=Helvetica, "
        'style=filled, fillcolor="#fff6e0"];',
        '  edge [fontsize=6, fontname=Helvetica, color="#8899aa", arrowsize=0.5];',
    ]
    clusters: dict[tuple[str, str], list[int]] = defaultdict(list)
    for node, (client, server, _) in enumerate(states):
        clusters[(client, server)].append(node)
    for number, ((client, server), members) in enumerate(sorted(clusters.items())):
        lines.append(f"  subgraph cluster_{number} {{")
        lines.append(f'    label="{client} / {server}"; style=rounded; color="#99aabb";')
        for node in members:
            flight = states[node][2]
            lines.append(f'    n{node} [label="{node}", tooltip="{flight} in flight"];')
        lines.append("  }")
    for source, target, label in edges:
        lines.append(f'  n{source} -> n{target} [tooltip="{_escape_dot_label(label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot_source: str) -> str:
    """Graphviz `dot -Tsvg`, bounded in time."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(
            "Graphviz is not installed: `dot` not found (Debian: apt-get install graphviz)"
        )
    done = subprocess.run(
        [dot, "-Tsvg"],
        input=dot_source,
        capture_output=True,
        text=True,
        timeout=DOT_TIMEOUT,
        check=False,
        preexec_fn=die_with_parent(),  # run() waits, so the forking thread outlives it
    )
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.strip()[:400]}")
    return done.stdout


# ------------------------------------------------------- sequence charts

_LANE = {Side.CLIENT: 170, Side.SERVER: 650}
_ROW = 30


def sequence_svg(rows: Sequence[Exchange], title: str) -> str:
    """A message sequence chart: client and server lifelines, segments between them."""
    width = 820
    height = 110 + _ROW * len(rows)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">',
        '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" '
        'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#334"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width // 2}" y="24" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    top, bottom = 62, height - 20
    for side, x in _LANE.items():
        parts.append(
            f'<rect x="{x - 50}" y="36" width="100" height="24" rx="4" fill="#dde7f5" '
            f'stroke="#334"/><text x="{x}" y="53" text-anchor="middle" font-size="13">'
            f"{side}</text>"
        )
        parts.append(
            f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#99a" '
            'stroke-dasharray="4,3"/>'
        )
    for number, row in enumerate(rows):
        y = top + 24 + number * _ROW
        parts.append(_sequence_row(row, y))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _sequence_row(row: Exchange, y: int) -> str:
    x = _LANE[row.side]
    text = escape(row.text)
    if row.kind == "state":
        return (
            f'<rect x="{x - 58}" y="{y - 14}" width="116" height="20" rx="9" fill="#e6f4e6" '
            f'stroke="#474"/><text x="{x}" y="{y}" text-anchor="middle" font-size="11">'
            f"{text}</text>"
        )
    if row.kind == "note":
        anchor, dx = ("end", -10) if row.side is Side.CLIENT else ("start", 10)
        return (
            f'<text x="{x + dx}" y="{y}" text-anchor="{anchor}" font-size="11" '
            f'fill="#553">{text}</text>'
        )
    x2 = _LANE[row.side.peer]
    if row.lost:
        x2 = (x + x2) // 2
    mid = (x + x2) // 2
    style = 'stroke="#b33" stroke-dasharray="5,3"' if row.lost else 'stroke="#334"'
    note = " (lost)" if row.lost else " (a copy stays)" if row.duplicated else ""
    return (
        f'<line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" {style} stroke-width="1.4" '
        f'marker-end="url(#arrow)"/><text x="{mid}" y="{y - 5}" text-anchor="middle" '
        f'font-size="11">{text}{escape(note)}</text>'
    )
