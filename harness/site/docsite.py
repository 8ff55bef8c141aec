"""`synack docs --out DIR`: the state-graph documentation, generated.

Every diagram and table comes from the engines run on the executable
specification (docdata.py): the endpoint exploration gives the state
diagram and the transition table per profile, the explorer gives each
scenario's graph and every property's status per scenario and profile,
and each broken variant's counterexample is a replayed run.  The site is
static HTML (index.html, no server) plus the same pages as Markdown that
GitHub renders, Graphviz SVG and Mermaid.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synack.harness.check.counterexample import Exchange
from synack.harness.common import exits
from synack.harness.common.pages import (
    STYLE,
    Bullets,
    Heading,
    Image,
    Mermaid,
    Page,
    Para,
    Pre,
    Table,
    html,
    markdown,
)
from synack.harness.output import REPORTS
from synack.harness.site import diagrams
from synack.harness.site.docdata import DOCS_CACHE, Job, Json, Results, jobs_for
from synack.harness.site.endpoint_graph import Transition
from synack.model.config import PROFILE_RULES, Profile
from synack.model.scenarios import DEFAULT_SCENARIOS, SCENARIOS
from synack.model.system import Side
from synack.model.types import State
from synack.properties.catalogue import CATALOGUE

EXIT_OK, EXIT_USAGE = exits.EXIT_OK, exits.EXIT_USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", default="synack-docs", help="where to write")
    parser.add_argument(
        "--profile",
        action="append",
        choices=[*(p.value for p in Profile), "all"],
        help="profiles whose scenarios are explored and whose property status is shown "
        "(repeatable, or 'all'; default: rfc9293); every profile gets its state diagram",
    )
    parser.add_argument(
        "--reports",
        metavar="DIR",
        default=str(REPORTS),
        help="latest check/prove/fuzz/conformance JSON reports to show (default: %(default)s)",
    )
    parser.add_argument(
        "--no-reports", action="store_true", help="leave the latest reports out (a reference only)"
    )
    parser.add_argument(
        "--cache",
        metavar="DIR",
        default=str(DOCS_CACHE),
        help="result cache (default: %(default)s)",
    )
    parser.add_argument("--no-cache", action="store_true", help="compute everything again")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")


def cmd_docs(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    if shutil.which("dot") is None:
        print(
            "synack docs: error: Graphviz is not installed: `dot` not found "
            "(Debian: apt-get install graphviz)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.jobs is not None and args.jobs < 1:
        print("synack docs: error: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"synack docs: error: {out} exists and is not a directory", file=sys.stderr)
        return EXIT_USAGE
    chosen = args.profile or [Profile.RFC9293.value]
    profiles = list(Profile) if "all" in chosen else list(dict.fromkeys(map(Profile, chosen)))
    start = time.monotonic()
    results = Results(None if args.no_cache else Path(args.cache), args.jobs)
    data = _compute(results, profiles, console)
    reports = None if args.no_reports else Path(args.reports)
    site = build_site(data, profiles, reports, args.whole_parser())
    written = write_site(site, out)
    console.print(
        f"synack docs: {len(site.pages)} pages and {len(site.files)} images in {out}/ "
        f"({results.computed} computed, {results.cached} cached) "
        f"in {time.monotonic() - start:.1f} s; open {out / 'index.html'}"
    )
    return EXIT_OK if written else EXIT_USAGE


def _compute(results: Results, profiles: Sequence[Profile], console: Console) -> dict[Job, Json]:
    jobs = jobs_for(profiles, DEFAULT_SCENARIOS)
    columns = (
        TextColumn("synack docs"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("", total=len(jobs))

        def done(job: Job, cached: bool) -> None:
            bar.update(task, advance=1, description=" ".join(job[1:]))

        return results.run(jobs, done)


# ------------------------------------------------------------------ site


class Site:
    def __init__(self) -> None:
        self.pages: list[Page] = []
        self.files: dict[str, str] = {}
        """Other files: name within the site -> text (SVG, DOT, Mermaid)."""

    def page(self, name: str, title: str) -> Page:
        page = Page(name, title)
        self.pages.append(page)
        return page

    def diagram(self, stem: str, dot: str) -> str:
        """Keep `stem`.dot, to be rendered as `stem`.svg; returns the SVG's name."""
        self.files[f"{stem}.dot"] = dot
        return f"{stem}.svg"

    def render(self) -> None:
        """Render every DOT file to SVG, a `dot` process per core at a time."""
        sources = {n: text for n, text in self.files.items() if n.endswith(".dot")}
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            svgs = pool.map(diagrams.render_svg, sources.values())
            for name, svg in zip(sources, svgs, strict=True):
                self.files[name.removesuffix(".dot") + ".svg"] = svg


def _transitions(data: Json) -> list[Transition]:
    return [
        Transition(
            State(t["state"]),
            t["event"],
            t["guard"],
            State(t["next_state"]),
            t["outputs"],
            t["rfc_step"],
        )
        for t in data["transitions"]
    ]


FIGURE_5_OMITS = ("ABORT", "rcv RST", "retransmission timeout", "user timeout")


def figure_5_view(transitions: Sequence[Transition]) -> list[Transition]:
    """The state changes Figure 5 draws: no aborts, resets or give-ups (note 3),
    except its own RST transition SYN-RECEIVED -> LISTEN (note 1)."""
    kept = []
    for t in transitions:
        if not t.changes_state:
            continue
        note_1 = t.event == "rcv RST" and (t.state, t.next_state) == (
            State.SYN_RECEIVED,
            State.LISTEN,
        )
        if note_1 or not t.event.startswith(FIGURE_5_OMITS):
            kept.append(t)
    return kept


def build_site(
    data: dict[Job, Json],
    profiles: Sequence[Profile],
    reports: Path | None,
    parser: argparse.ArgumentParser,
) -> Site:
    site = Site()
    index = site.page("index", "synack: the TCP connection lifecycle, generated")
    index.add(
        Para(
            "Everything on these pages is generated by `synack docs` from the executable "
            "specification (RFC 9293 section 3.10 as one pure function) and the engines run "
            "on it: the state diagrams and transition tables come from exploring one "
            "endpoint's steps, the scenario graphs and property results from the exhaustive "
            "explorer, the counterexamples from replayed runs of the broken variants. "
            "The hand-written guides are in the repository's docs/ folder; the command line "
            "is in the [CLI reference](cli)."
        ),
        Heading("State diagrams and transition tables"),
    )
    rows: list[tuple[str, ...]] = []
    for profile in Profile:
        endpoint = data[("endpoint", profile.value)]
        _state_pages(site, profile, endpoint)
        rows.append(
            (
                profile.value,
                f"[state diagram](state-diagram-{profile.value})",
                f"[transition table](transitions-{profile.value})",
                f"{len(endpoint['transitions'])} transition kinds, "
                f"{endpoint['tcbs']:,} TCBs explored",
            )
        )
    index.add(Table(("profile", "diagram", "table", "explored"), tuple(rows)))
    index.add(Heading("Scenarios"))
    rows = []
    for name in DEFAULT_SCENARIOS:
        runs = [data[("scenario", name, p.value)] for p in profiles]
        _scenario_page(site, name, runs)
        first = runs[0]
        rows.append(
            (
                f"[{name}](scenarios/{name})",
                SCENARIOS[name].description,
                f"{first['states']:,}",
                f"{first['transitions']:,}",
                str(first["depth"]),
            )
        )
    index.add(
        Para(
            f"States, transitions and depth under the {profiles[0].value} profile; each "
            "scenario's page has the figures for "
            + ", ".join(p.value for p in profiles)
            + " (`synack docs --profile all` explores every profile)."
        ),
        Table(("scenario", "what happens", "states", "transitions", "depth"), tuple(rows)),
        Heading("Properties and counterexamples"),
        Para(
            "[The property catalogue](properties): what each property means, where it comes "
            "from, whether it holds in each scenario under each profile, and every broken "
            "variant's counterexample as a sequence diagram."
        ),
        Heading("Results"),
        Para("[The latest check, prove, fuzz and conformance reports](results), if any."),
    )
    _properties_page(site, data, profiles)
    _results_page(site, reports)
    _cli_page(site, parser)
    site.render()
    return site


def _cli_page(site: Site, parser: argparse.ArgumentParser) -> None:
    """The command line reference, from the argument parser itself."""
    page = site.page("cli", "Command line reference")
    page.add(
        Para(f"Generated from synack's argument parser. {exits.CONTRACT}"),
        Pre(_help(parser)),
    )
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in getattr(action, "choices", {}).items():
            page.add(Heading(f"synack {name}"), Pre(_help(sub)))


def _help(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=90)
    return parser.format_help()


def _state_pages(site: Site, profile: Profile, endpoint: Json) -> None:
    transitions = _transitions(endpoint)
    changes = [t for t in transitions if t.changes_state]
    name = profile.value
    page = site.page(f"state-diagram-{name}", f"State diagram: {name} profile")
    lifecycle = figure_5_view(changes)
    page.add(
        Para(
            f"Derived from {endpoint['tcbs']:,} TCBs and {endpoint['steps']:,} steps of "
            f"`model.step` under the {name} profile: every user call, every armed timer, and "
            "the segments a peer can send (right ones, old ones, resets). Edges are labelled "
            '"event / action" as in RFC 9293 Figure 5; signals to the user and the guards '
            f"are in the [transition table](transitions-{name})."
        ),
        Heading("The connection lifecycle (Figure 5's view)"),
        Para(
            "State changes without aborts, resets and give-ups, which Figure 5 leaves out "
            "(its note 3), except its own RST transition from SYN-RECEIVED back to LISTEN."
        ),
        Image(site.diagram(f"state-diagram-{name}", _dot(lifecycle, name, "lifecycle")), name),
        Mermaid(diagrams.state_diagram_mermaid(lifecycle)),
        Heading("Every state change"),
        Para("With ABORT, received RSTs, retransmission give-up and the user timeout."),
        Image(
            site.diagram(f"state-diagram-{name}-complete", _dot(changes, name, "complete")),
            f"{name} complete",
        ),
        Mermaid(diagrams.state_diagram_mermaid(changes)),
    )
    rules = PROFILE_RULES[profile]
    if rules:
        page.add(
            Heading("Profile rules"),
            Table(
                ("rule", "behaviour", "source"), tuple((r.id, r.behaviour, r.source) for r in rules)
            ),
        )
    table = site.page(f"transitions-{name}", f"Transition table: {name} profile")
    table.add(
        Para(
            "Every kind of step found: the state, the event (Figure 5's names), the guard "
            "that picks this outcome, the next state, the outputs (segments, signals, TCB "
            "creation and deletion) and the steps of RFC 9293 section 3.10 the handlers ran. "
            "A step that changes nothing is not listed. 'seen' counts the TCBs it was seen from."
        ),
        Table(
            ("state", "event", "guard", "next state", "outputs", "RFC step", "seen"),
            tuple(
                (
                    t["state"],
                    t["event"],
                    t["guard"],
                    t["next_state"],
                    t["outputs"],
                    t["rfc_step"],
                    str(t["count"]),
                )
                for t in endpoint["transitions"]
            ),
        ),
    )


def _dot(transitions: Sequence[Transition], profile: str, view: str) -> str:
    return diagrams.state_diagram_dot(transitions, f"TCP endpoint, {profile} profile ({view})")


def _scenario_page(site: Site, name: str, runs: Sequence[Json]) -> None:
    scenario = SCENARIOS[name]
    page = site.page(f"scenarios/{name}", f"Scenario: {name}")
    page.add(
        Para(scenario.description),
        Table(
            ("client program", "server program"),
            tuple(
                (str(c) if c else "", str(s) if s else "")
                for c, s in zip_longest(scenario.client_script, scenario.server_script)
            ),
        ),
        Heading("The explored graph"),
        Table(
            ("profile", "states", "transitions", "depth", "ends", "properties"),
            tuple(
                (
                    run["profile"],
                    f"{run['states']:,}",
                    f"{run['transitions']:,}",
                    str(run["depth"]),
                    ", ".join(f"{k}: {v:,}" for k, v in run["ends"].items()),
                    _verdict_summary(run),
                )
                for run in runs
            ),
        ),
    )
    for run in runs:
        profile = run["profile"]
        page.add(Heading(f"{profile} profile", 3))
        if run["global"] is not None:
            states = [tuple(s) for s in run["global"]["states"]]
            edges = [tuple(e) for e in run["global"]["edges"]]
            title = f"{name} ({profile}): every state, clustered by (client, server) state"
            dot = diagrams.global_dot(states, edges, title)
            page.add(
                Para(f"All {len(states):,} states and {len(edges):,} transitions."),
                Image(site.diagram(f"scenarios/{name}-{profile}-global", dot), "global graph"),
            )
        nodes = {(c, s): n for c, s, n in run["pair_nodes"]}
        edges_by_pair = {(a, b, c, d): n for a, b, c, d, n in run["pair_edges"]}
        title = f"{name} ({profile}): states projected onto (client, server) state pairs"
        page.add(
            Para(
                "The explored graph projected onto the pair of endpoint states; an edge counts "
                "the transitions between two pairs."
            ),
            Image(
                site.diagram(
                    f"scenarios/{name}-{profile}-pairs",
                    diagrams.pair_dot(nodes, edges_by_pair, title),
                ),
                "pair projection",
            ),
            Mermaid(diagrams.pair_mermaid(edges_by_pair)),
        )


def _status(prop: Json) -> str:
    if prop["holds"] is True:
        return "holds"
    if prop["holds"] is None:
        return "unknown"
    return "deviates (documented)" if prop["deviation"] else "VIOLATED"


def _verdict_summary(run: Json) -> str:
    bad = [p["name"] + f" ({_status(p)})" for p in run["properties"] if p["holds"] is not True]
    return "all hold" if not bad else "; ".join(bad)


def _properties_page(site: Site, data: dict[Job, Json], profiles: Sequence[Profile]) -> None:
    page = site.page("properties", "The property catalogue")
    page.add(
        Para(
            "Each property with its meaning and source, its status in every default scenario "
            "(exhaustive exploration under loss, duplication and reordering) under the "
            f"profiles {', '.join(p.value for p in profiles)} (`synack docs --profile all` "
            "adds the others), and the broken variants that violate it, each with its "
            "counterexample. 'deviates (documented)' marks a profile that violates a property "
            "because the stack it describes does so; the reason is given."
        ),
    )
    for prop in CATALOGUE:
        page.add(
            Heading(prop.name),
            Para(f"{prop.meaning}. Source: {prop.source}. Kind: {prop.kind.value}."),
        )
        rows = []
        notes = []
        for name in DEFAULT_SCENARIOS:
            cells = [name]
            for profile in profiles:
                run = data[("scenario", name, profile.value)]
                found = next(p for p in run["properties"] if p["name"] == prop.name)
                cells.append(_status(found))
                if found["holds"] is False:
                    notes.append(
                        f"{name}, {profile.value}: {found['deviation'] or found['message']}"
                    )
            rows.append(tuple(cells))
        page.add(Table(("scenario", *(p.value for p in profiles)), tuple(rows)))
        if notes:
            page.add(Bullets(tuple(notes)))
        links = []
        for expect in prop.violated_by:
            job = (
                "counterexample",
                prop.name,
                expect.variant.value,
                expect.scenario,
                expect.profile.value,
            )
            case = data[job]
            stem = _counterexample_page(site, case)
            links.append(
                f"variant {expect.variant.value} on {expect.scenario} ({expect.profile.value}): "
                + (
                    f"[counterexample, {case['length']} steps]({stem})"
                    if case["found"]
                    else "NOT violated"
                )
            )
        page.add(Bullets(tuple(links)))


def _counterexample_page(site: Site, case: Json) -> str:
    stem = f"counterexamples/{case['property']}--{case['variant']}"
    if any(p.name == stem for p in site.pages):
        return stem
    title = f"{case['variant']} violates {case['property']}"
    page = site.page(stem, title)
    if not case["found"]:
        page.add(Para("The variant was expected to violate the property here, and did not."))
        return stem
    rows = [
        Exchange(r["kind"], Side(r["side"]), r["text"], r["lost"], r["duplicated"])
        for r in case["rows"]
    ]
    svg = diagrams.sequence_svg(rows, f"{case['variant']} on {case['scenario']}")
    site.files[f"{stem}.svg"] = svg
    site.files[f"{stem}.mmd"] = case["mermaid"]
    page.add(
        Para(
            f"Scenario {case['scenario']}, profile {case['profile']}: a shortest run (breadth-"
            f"first) of {case['length']} steps. {case['message']}"
        ),
        Image(f"{stem}.svg", title),
        Mermaid(case["mermaid"]),
        Heading("Step by step"),
        Pre(case["chart"]),
    )
    return stem


def _results_page(site: Site, reports: Path | None) -> None:
    page = site.page("results", "Latest results")
    if reports is None:
        page.add(Para("Not included in this build (--no-reports)."))
        return
    found = sorted(reports.glob("*.json")) if reports.is_dir() else []
    if not found:
        page.add(
            Para(
                f"No reports in {reports}/ yet: `synack check`, `synack prove` and "
                "`synack fuzz` keep their latest report there."
            )
        )
        return
    for path in found:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            page.add(Heading(path.stem), Para(f"unreadable: {exc}"))
            continue
        page.add(Heading(path.stem), *_report_blocks(path.stem, report))


def _report_blocks(kind: str, report: Any) -> list[Any]:
    if not isinstance(report, dict):
        return [Para("not a synack report")]
    if kind == "check" and isinstance(report.get("results"), list):
        rows = tuple(
            (
                str(r.get("scenario")),
                str(r.get("profile")),
                str(r.get("variant") or "-"),
                f"{r.get('states', 0):,}",
                ", ".join(p["name"] for p in r.get("properties", []) if p.get("holds") is False)
                or "all hold",
            )
            for r in report["results"]
        )
        return [Table(("scenario", "profile", "variant", "states", "violated"), rows)]
    if kind == "prove" and isinstance(report.get("results"), list):
        head = Para(f"profile {report.get('profile')}, variant {report.get('variant') or '-'}")
        claims = tuple(
            (str(r.get("name")), str(r.get("result")), str(r.get("seconds")))
            for r in report["results"]
        )
        return [head, Table(("claim", "result", "seconds"), claims)]
    if kind == "fuzz":
        coverage = report.get("coverage") or {}
        facts = (
            ("target", report.get("target")),
            ("profile", report.get("profile")),
            ("examples", report.get("examples")),
            ("segments", report.get("segments")),
            ("examples/s", report.get("examples_per_second")),
            ("coverage", f"{coverage.get('covered')}/{coverage.get('total')}"),
            ("findings", len(report.get("findings") or [])),
        )
        blocks: list[Any] = [Table(("", ""), tuple((k, str(v)) for k, v in facts))]
        explained = [
            str(f.get("explanation") or f.get("divergence") or f)[:300]
            for f in report.get("findings") or []
        ]
        if explained:
            blocks.append(Bullets(tuple(explained)))
        return blocks
    return [Pre(json.dumps(report, indent=2)[:4000])]


def write_site(site: Site, out: Path) -> bool:
    """Write every page (HTML and Markdown), image and the style sheet."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "style.css").write_text(STYLE.lstrip())
        for page in site.pages:
            target = out / page.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.with_suffix(".html").write_text(html(page))
            target.with_suffix(".md").write_text(markdown(page))
        for name, text in site.files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except OSError as exc:
        print(f"synack docs: error: cannot write {out}: {exc}", file=sys.stderr)
        return False
    return True
