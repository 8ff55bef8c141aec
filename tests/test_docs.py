"""`synack docs`: the state diagram against RFC 9293 Figure 5, the generated
site (links, images, the committed reference in docs/generated), and the
HTML in headless Chromium.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
import time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from synack.harness.common.exits import reset_signals_in_child
from synack.harness.site import diagrams
from synack.harness.site.docdata import Results
from synack.harness.site.docsite import figure_5_view
from synack.harness.site.endpoint_graph import Transition, explore_endpoint
from synack.model import Profile, State, Variant
from synack.model.scenarios import EXPLORATION_CONFIG

from .util import require_tool

S = State
REPO = Path(__file__).resolve().parent.parent
GENERATED = REPO / "docs" / "generated"
SYNACK = Path(sys.executable).parent / "synack"
REFERENCE_ARGS = ("--no-reports",)
"""How docs/generated is made: `synack docs --out docs/generated` with these."""

# RFC 9293 Figure 5, read off the figure: (state, event, next state, segment sent or None).
FIGURE_5 = [
    (S.CLOSED, "active OPEN", S.SYN_SENT, "snd SYN"),
    (S.CLOSED, "passive OPEN", S.LISTEN, None),
    (S.LISTEN, "CLOSE", S.CLOSED, None),
    (S.LISTEN, "rcv SYN", S.SYN_RECEIVED, "snd SYN,ACK"),
    (S.LISTEN, "SEND", S.SYN_SENT, "snd SYN"),
    (S.SYN_SENT, "CLOSE", S.CLOSED, None),
    (S.SYN_SENT, "rcv SYN", S.SYN_RECEIVED, "snd SYN,ACK"),
    (S.SYN_SENT, "rcv SYN,ACK", S.ESTABLISHED, "snd ACK"),
    (S.SYN_RECEIVED, "rcv ACK of SYN", S.ESTABLISHED, None),
    (S.SYN_RECEIVED, "CLOSE", S.FIN_WAIT_1, "snd FIN"),
    (S.SYN_RECEIVED, "rcv RST", S.LISTEN, None),  # note 1
    (S.ESTABLISHED, "CLOSE", S.FIN_WAIT_1, "snd FIN"),
    (S.ESTABLISHED, "rcv FIN", S.CLOSE_WAIT, "snd ACK"),
    (S.FIN_WAIT_1, "rcv ACK of FIN", S.FIN_WAIT_2, None),
    (S.FIN_WAIT_1, "rcv FIN", S.CLOSING, "snd ACK"),
    (S.FIN_WAIT_2, "rcv FIN", S.TIME_WAIT, "snd ACK"),
    (S.CLOSE_WAIT, "CLOSE", S.LAST_ACK, "snd FIN"),
    (S.CLOSING, "rcv ACK of FIN", S.TIME_WAIT, None),
    (S.LAST_ACK, "rcv ACK of FIN", S.CLOSED, None),
    (S.TIME_WAIT, "Timeout=2MSL", S.CLOSED, None),
]
# Note 2: FIN-WAIT-1 to TIME-WAIT when a FIN arrives that also ACKs our FIN.
NOTE_2 = [(S.FIN_WAIT_1, "rcv FIN, ACK of FIN", S.TIME_WAIT, "snd ACK")]
# Note 3: "receipt of a RST from any state results in a transition to LISTEN or
# CLOSED".  (Its first sentence, a RST *sent* with a move to TIME-WAIT, is not
# what 3.10.5 ABORT says: there the TCB is deleted, CLOSED, and so the model.)
NOTE_3 = [
    (state, "rcv RST", S.CLOSED, None)
    for state in (
        S.SYN_SENT,
        S.SYN_RECEIVED,
        S.ESTABLISHED,
        S.FIN_WAIT_1,
        S.FIN_WAIT_2,
        S.CLOSE_WAIT,
        S.CLOSING,
        S.LAST_ACK,
        S.TIME_WAIT,
    )
] + [
    (state, "ABORT", S.CLOSED, "snd RST")
    for state in (S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT)
]


def missing(
    transitions: list[Transition], expected: list[tuple[State, str, State, str | None]]
) -> list[str]:
    """The expected transitions that no explored one matches (segment sent included)."""
    absent = []
    for state, event, nxt, sent in expected:
        found = any(
            t.state is state
            and t.event == event
            and t.next_state is nxt
            and (sent is None or sent in t.outputs.split("; "))
            for t in transitions
        )
        if not found:
            absent.append(f"{state} --{event} / {sent or 'x'}--> {nxt}")
    return absent


def graph(profile: Profile = Profile.RFC9293, variant: Variant | None = None) -> list[Transition]:
    cfg = EXPLORATION_CONFIG.with_(profile=profile, variant=variant)
    return explore_endpoint(cfg).state_changes()


def test_state_diagram_has_every_transition_of_figure_5_and_its_notes() -> None:
    changes = graph()
    assert missing(changes, FIGURE_5 + NOTE_2 + NOTE_3) == []
    assert missing(figure_5_view(changes), FIGURE_5 + NOTE_2) == []
    assert {t.state for t in changes} | {t.next_state for t in changes} == set(State)


def test_the_rst_back_to_listen_needs_a_passive_open() -> None:
    """Note 1: SYN-RECEIVED -> LISTEN on RST only after a passive OPEN; after a
    simultaneous open the same RST closes ("connection refused")."""
    to_listen = [t for t in graph() if t.event == "rcv RST" and t.next_state is S.LISTEN]
    assert {t.state for t in to_listen} == {S.SYN_RECEIVED}
    refused = [
        t
        for t in graph()
        if (t.state, t.event, t.next_state) == (S.SYN_RECEIVED, "rcv RST", S.CLOSED)
    ]
    assert refused and all("connection refused" in t.outputs for t in refused)


def test_a_broken_variant_misses_figure_5_transitions() -> None:
    """The check can fail: no-time-wait never enters TIME-WAIT, two-way-handshake
    never waits in SYN-RECEIVED for the ACK of its SYN."""
    no_tw = missing(graph(variant=Variant.NO_TIME_WAIT), FIGURE_5 + NOTE_2)
    assert "FIN-WAIT-2 --rcv FIN / snd ACK--> TIME-WAIT" in no_tw
    assert "TIME-WAIT --Timeout=2MSL / x--> CLOSED" in no_tw
    two_way = missing(graph(variant=Variant.TWO_WAY_HANDSHAKE), FIGURE_5)
    assert "LISTEN --rcv SYN / snd SYN,ACK--> SYN-RECEIVED" in two_way


def test_linux_profile_diagram_differs_where_its_rules_say() -> None:
    """Linux: a new SYN in TIME-WAIT is answered from the listener (SYN,ACK),
    which RFC 9293 does not do."""
    linux = graph(Profile.LINUX)
    reborn = [t for t in linux if (t.state, t.event) == (S.TIME_WAIT, "rcv SYN")]
    assert reborn and all(t.next_state is S.SYN_RECEIVED for t in reborn)
    assert not [t for t in graph() if (t.state, t.event) == (S.TIME_WAIT, "rcv SYN")]


def test_every_transition_names_its_rfc_step() -> None:
    steps = {t.rfc_step for t in graph()}
    assert "" not in steps
    assert all(s.startswith("3.10.") for s in steps), steps
    fifth = [t for t in graph() if (t.state, t.next_state) == (S.LAST_ACK, S.CLOSED)]
    assert any("Fifth, check the ACK field" in t.rfc_step for t in fifth)


def svg_node_titles(svg: str) -> set[str]:
    """The node names in Graphviz SVG output."""
    return {
        unescape(title)
        for title in re.findall(r'<g id="node\d+" class="node">\s*<title>([^<]+)</title>', svg)
    }


def test_rendered_state_diagram_has_all_eleven_state_nodes() -> None:
    require_tool("dot")
    svg = diagrams.render_svg(diagrams.state_diagram_dot(graph(), "rfc9293"))
    assert svg_node_titles(svg) == {str(s) for s in State}


# ------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference build (rfc9293, no reports), computed afresh (empty cache)."""
    require_tool("dot")
    root = tmp_path_factory.mktemp("docs")
    out = root / "site"
    done = subprocess.run(
        # One worker: the suite runs other files (the Linux fuzzer, in real time) alongside.
        [
            str(SYNACK),
            "docs",
            "--out",
            str(out),
            "--cache",
            str(root / "cache"),
            "--jobs",
            "1",
            *REFERENCE_ARGS,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert "pages" in done.stderr
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def test_every_page_and_image_linked_exists(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert site / "index.html" in pages
    broken = []
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            target = (page.parent / link.split("#")[0]).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {link}")
    for page in sorted(site.rglob("*.md")):
        for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if not link.startswith("http") and not (page.parent / link).exists():
                broken.append(f"{page.relative_to(site)} -> {link}")
    assert broken == []
    assert len(pages) >= 20


def test_site_holds_what_the_issue_lists(site: Path) -> None:
    for profile in Profile:  # every profile's diagram and table, whichever are explored
        assert (site / f"state-diagram-{profile.value}.svg").exists()
        assert (site / f"transitions-{profile.value}.md").exists()
    assert "stateDiagram-v2" in (site / "state-diagram-rfc9293.md").read_text()
    table = (site / "transitions-rfc9293.md").read_text()
    assert "| state | event | guard | next state | outputs | RFC step | seen |" in table
    assert "| LISTEN | rcv SYN |" in table
    small = (site / "scenarios" / "handshake-rfc9293-global.svg").read_text()
    assert small.count('class="cluster"') >= 5  # clustered by the endpoint-state pair
    assert not (site / "scenarios" / "lifecycle-rfc9293-global.svg").exists()  # too big
    assert (site / "scenarios" / "lifecycle-rfc9293-pairs.svg").exists()
    catalogue = (site / "properties.md").read_text()
    assert catalogue.count("counterexample, ") >= 10
    sequence = site / "counterexamples" / "no-old-syn-connection--two-way-handshake.md"
    text = sequence.read_text()
    assert "sequenceDiagram" in text and "ESTABLISHED" in text
    svg = (site / "counterexamples" / "no-old-syn-connection--two-way-handshake.svg").read_text()
    assert "SYN seq=90" in svg
    assert "usage: synack docs" in (site / "cli.md").read_text()


def test_docs_generated_is_up_to_date(site: Path) -> None:
    """docs/generated is `synack docs --out docs/generated --no-reports`.
    Regenerate it with that command when this fails."""
    ours = {p.relative_to(site) for p in site.rglob("*") if p.is_file()}
    theirs = {p.relative_to(GENERATED) for p in GENERATED.rglob("*") if p.is_file()}
    assert sorted(map(str, ours ^ theirs)) == []
    stale = [
        str(name)
        for name in sorted(ours)
        if name.suffix != ".svg" and not filecmp.cmp(site / name, GENERATED / name, shallow=False)
    ]
    assert stale == [], "docs/generated is stale: regenerate it (see this test's docstring)"


def test_results_page_shows_latest_reports(site: Path, tmp_path: Path) -> None:
    """The latest reports in .synack/reports are shown (here: a `synack check` run);
    the second run takes everything from the cache (here: the reference build's)."""
    env = {**os.environ, "COLUMNS": "120"}
    cache = ["--cache", str(site.parent / "cache")]
    check = subprocess.run(
        [str(SYNACK), "check", "--scenario", "handshake"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert check.returncode == 0, check.stderr
    assert (tmp_path / ".synack" / "reports" / "check.json").exists()
    done = subprocess.run(
        [str(SYNACK), "docs", "--out", "site", *cache],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "0 computed" in done.stderr
    results = (tmp_path / "site" / "results.md").read_text()
    assert "## check" in results and "| handshake | rfc9293 | - | 302 | all hold |" in results


def test_cache_serves_results_and_recomputes_damaged_entries(tmp_path: Path) -> None:
    jobs = [("endpoint", "rfc9293")]
    first = Results(tmp_path)
    data = first.run(jobs)
    assert (first.computed, first.cached) == (1, 0)
    second = Results(tmp_path)
    assert second.run(jobs) == data and (second.computed, second.cached) == (0, 1)
    for entry in tmp_path.iterdir():
        entry.write_text("{ damaged")
    third = Results(tmp_path)
    assert third.run(jobs) == data and third.computed == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--profile", "bsd"], "invalid choice"),
    ],
)
def test_docs_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [str(SYNACK), "docs", "--out", str(tmp_path / "s"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_docs_out_is_a_file_or_graphviz_is_missing(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("")
    done = subprocess.run(
        [str(SYNACK), "docs", "--out", str(afile)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "not a directory" in done.stderr
    no_dot = subprocess.run(
        [str(SYNACK), "docs", "--out", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(tmp_path)},
    )
    assert no_dot.returncode == 2 and "Graphviz is not installed" in no_dot.stderr
    assert "Traceback" not in no_dot.stderr


# ------------------------------------------------------------- Chromium


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def screenshot(page: Path, png: Path, profile: Path) -> list[str]:
    """Load `page` in headless Chromium (a fresh user-data-dir), save a screenshot;
    returns the page's console messages."""
    chromium = require_tool("chromium")
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1280,1600",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def not_blank(png: Path) -> bool:
    from PIL import Image

    with Image.open(png) as image:
        histogram = image.convert("L").histogram()
        dark = sum(histogram[:128])  # pixels darker than mid-grey
        shades = sum(1 for count in histogram if count)
        return dark > 2000 and shades > 16


def test_chromium_detects_console_errors_and_blank_pages(tmp_path: Path) -> None:
    """The checks below can fail: a page that logs to the console is caught, and a
    blank page is told from a drawn one."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom')</script></body></html>")
    messages = screenshot(page, tmp_path / "bad.png", tmp_path / "profile")
    assert any("boom" in m for m in messages)
    assert not not_blank(tmp_path / "bad.png")


def test_site_renders_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    for name in ("index", "state-diagram-rfc9293", "properties"):
        png = tmp_path / f"{name}.png"
        messages = screenshot(site / f"{name}.html", png, tmp_path / f"profile-{name}")
        assert messages == [], messages
        assert png.stat().st_size > 10_000
        assert not_blank(png), f"{name}.html rendered blank"
    svg = (site / "state-diagram-rfc9293.svg").read_text()
    assert svg_node_titles(svg) == {str(s) for s in State}
    # the diagram page shows the diagram: its <img> points at the SVG
    assert 'src="state-diagram-rfc9293.svg"' in (site / "state-diagram-rfc9293.html").read_text()


def test_tools_are_installed_as_the_readme_says() -> None:
    """README set-up installs Graphviz and Chromium (CI: missing means failing)."""
    for tool in ("dot", "chromium"):
        if shutil.which(tool) is None:
            require_tool(tool)


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_hand_written_docs_links_resolve() -> None:
    """Every relative link (and #anchor) in README.md, docs/*.md and docs/stacks/ exists."""
    broken = []
    docs = REPO / "docs"
    hand_written = [*sorted(docs.glob("*.md")), *sorted((docs / "stacks").glob("*.md"))]
    for doc in [REPO / "README.md", *hand_written]:
        for link in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if link.startswith("http"):
                continue
            path, _, anchor = link.partition("#")
            target = doc.parent / path if path else doc
            if not target.exists():
                broken.append(f"{doc.name}: {link}")
            elif anchor and target.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", target.read_text(), re.MULTILINE)
                if anchor not in {_slug(h) for h in headings}:
                    broken.append(f"{doc.name}: {link} (no such heading)")
    assert broken == []


def _group(pgid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return found.stdout.split()


def _wait_for_workers(proc: subprocess.Popen[str], timeout: float) -> None:
    """Until synack's process group holds more than synack itself: its workers run."""
    deadline = time.monotonic() + timeout
    while len(_group(proc.pid)) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no worker process within {timeout} s (exit status {proc.poll()})")
        time.sleep(0.05)  # a poll interval, not a guess at how long start-up takes


def test_ctrl_c_stops_every_worker_and_caches_nothing_partial(tmp_path: Path) -> None:
    import json
    import signal

    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [str(SYNACK), "docs", "--out", str(tmp_path / "s"), "--cache", str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
        preexec_fn=reset_signals_in_child,  # pytest may run with SIGINT ignored
    )
    try:
        _wait_for_workers(proc, timeout=120)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert _group(proc.pid) == []
    for entry in cache.glob("*.json") if cache.exists() else ():
        data = json.loads(entry.read_text())
        assert data.get("complete", True) is True
