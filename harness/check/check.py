"""`synack check`: explore scenarios, check the catalogue, report and explain."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from synack.harness import output
from synack.harness.check.counterexample import chart, mermaid, run, step_to_json, system_to_json
from synack.harness.check.explore import Exploration, Limits, Progressing, explore
from synack.harness.common import exits
from synack.harness.common.exits import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, EXIT_VERDICT
from synack.harness.common.validate import nonnegative_int, positive_float, positive_int
from synack.harness.output import save_latest, write_json
from synack.model.config import Profile, Variant
from synack.model.network import NetworkConfig
from synack.model.scenarios import DEFAULT_SCENARIOS, Scenario
from synack.model.scenarios import get as get_scenario
from synack.properties.catalogue import CATALOGUE, Property, deviation


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="S",
        help="scenario to check (repeatable; default: every default scenario)",
    )
    parser.add_argument("--variant", metavar="V", help="a deliberately broken variant")
    parser.add_argument(
        "--profile", metavar="P", default="rfc9293", help="rfc9293 (default), linux, rfc1337"
    )
    parser.add_argument(
        "--property", action="append", metavar="P", help="check only these properties"
    )
    net = parser.add_argument_group("network semantics (default: each scenario's own)")
    net.add_argument(
        "--capacity", type=positive_int, metavar="N", help="segments in flight per direction"
    )
    net.add_argument(
        "--dup", type=nonnegative_int, metavar="N", help="duplications allowed in a run"
    )
    net.add_argument("--no-loss", action="store_true", help="the network loses nothing")
    net.add_argument(
        "--fifo", "--no-reorder", action="store_true", dest="fifo", help="no reordering"
    )
    net.add_argument(
        "--eager-timers",
        action="store_true",
        help="timers may expire while segments are in flight (much larger graphs)",
    )
    lim = parser.add_argument_group("limits")
    lim.add_argument("--max-states", type=positive_int, metavar="N", help="stop after N states")
    lim.add_argument(
        "--budget", type=positive_float, metavar="SECONDS", help="stop after this long"
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--json", metavar="FILE", help="write the report as JSON to FILE ('-': stdout)"
    )
    out.add_argument(
        "--out", metavar="DIR", help="save each counterexample (.json, .mmd, .txt) here"
    )


class UsageError(Exception):
    pass


def _choose(
    args: argparse.Namespace,
) -> tuple[list[Scenario], Profile, Variant | None, list[Property]]:
    try:
        scenarios = [get_scenario(name) for name in args.scenario or DEFAULT_SCENARIOS]
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    try:
        profile = Profile(args.profile)
    except ValueError:
        raise UsageError(
            f"unknown profile {args.profile!r} (known: {', '.join(p.value for p in Profile)})"
        ) from None
    variant = None
    if args.variant:
        try:
            variant = Variant(args.variant)
        except ValueError:
            known = ", ".join(v.value for v in Variant)
            raise UsageError(f"unknown variant {args.variant!r} (known: {known})") from None
    props = list(CATALOGUE)
    if args.property:
        names = {p.name for p in CATALOGUE}
        for name in args.property:
            if name not in names:
                raise UsageError(f"unknown property {name!r} (known: {', '.join(sorted(names))})")
        props = [p for p in CATALOGUE if p.name in args.property]
    try:
        for scenario in scenarios:
            _network(scenario, args)  # NetworkConfig checks --capacity and --dup itself
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.max_states is not None and args.max_states < 1:
        raise UsageError("--max-states must be at least 1")
    if args.budget is not None and args.budget <= 0:
        raise UsageError("--budget must be a positive number of seconds")
    return scenarios, profile, variant, props


def _network(scenario: Scenario, args: argparse.Namespace) -> NetworkConfig:
    base = scenario.net
    return NetworkConfig(
        capacity=args.capacity if args.capacity is not None else base.capacity,
        dup=args.dup if args.dup is not None else base.dup,
        loss=base.loss and not args.no_loss,
        reorder=base.reorder and not args.fifo,
    )


def cmd_check(args: argparse.Namespace) -> int:
    try:
        scenarios, profile, variant, props = _choose(args)
    except UsageError as exc:
        print(f"synack check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    to_stdout = args.json == "-"
    console = Console(stderr=to_stdout, highlight=False)
    limits = Limits(args.max_states, args.budget, Limits.default_memory())
    results: list[tuple[Scenario, Exploration]] = []
    interrupted = False
    for scenario in scenarios:
        system = scenario.build(profile, variant, _network(scenario, args), args.eager_timers)
        result = _explore_with_progress(console, scenario.name, system, props, limits)
        results.append((scenario, result))
        if result.stop_reason and "interrupted" in result.stop_reason:
            interrupted = True
            break
    report = _report(results, profile, variant)
    _print_summary(console, results, props)
    _print_counterexamples(console, results, profile)
    save_latest("check", report)
    write_json(args.json, report)
    if args.out:
        try:
            _save_counterexamples(Path(args.out), report, console)
        except OSError as exc:
            output.write_failed(f"the counterexamples in {args.out}", exc, json.dumps(report))
    if interrupted:
        return exits.interrupted_status()
    if any(r.violations for _, r in results):
        return EXIT_VERDICT
    if not all(r.complete for _, r in results):
        return EXIT_INCOMPLETE
    return EXIT_OK


def _explore_with_progress(
    console: Console,
    name: str,
    system: Any,
    props: list[Property],
    limits: Limits,
) -> Exploration:
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[name]}[/]"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[states]:>9,} states  {task.fields[transitions]:>10,} transitions"),
        TextColumn("depth {task.fields[depth]:>3}"),
        TimeElapsedColumn(),
    )
    live = console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not live) as bar:
        task = bar.add_task("explore", total=None, name=name, states=0, transitions=0, depth=0)

        def update(p: Progressing) -> None:
            output.progress_line(f"exploring {name}")
            bar.update(task, states=p.states, transitions=p.transitions, depth=p.depth)

        return explore(system, props, limits, update)


def _verdict(result: Exploration, name: str) -> str:
    holds = result.holds(name)
    return "holds" if holds else ("VIOLATED" if holds is False else "unknown")


def _print_summary(
    console: Console, results: list[tuple[Scenario, Exploration]], props: list[Property]
) -> None:
    table = Table(title="synack check", title_justify="left")
    table.add_column("scenario")
    for column in ("states", "transitions", "depth", "seconds", "MiB"):
        table.add_column(column, justify="right")
    table.add_column("verdict")
    for scenario, r in results:
        bad = [name for name in r.violations]
        verdict = (
            f"[red]VIOLATED: {', '.join(bad)}[/]"
            if bad
            else ("[green]all hold[/]" if r.complete else f"[yellow]incomplete: {r.stop_reason}[/]")
        )
        table.add_row(
            scenario.name,
            f"{r.states:,}",
            f"{r.transitions:,}",
            str(r.depth),
            f"{r.seconds:.1f}",
            f"{r.peak_rss / 2**20:.0f}",
            verdict,
        )
    console.print(table)
    grid = Table(title="properties", title_justify="left")
    grid.add_column("property")
    grid.add_column("kind")
    grid.add_column("result")
    for prop in props:
        verdicts = [(scenario.name, _verdict(r, prop.name)) for scenario, r in results]
        bad = [name for name, v in verdicts if v == "VIOLATED"]
        unknown = [name for name, v in verdicts if v == "unknown"]
        if bad:
            cell = f"[red]VIOLATED[/] in {', '.join(bad)}"
        elif unknown:
            cell = f"[yellow]unknown[/] in {', '.join(unknown)} (incomplete exploration)"
        else:
            cell = f"[green]holds[/] in all {len(verdicts)}"
        grid.add_row(prop.name, prop.kind.value, cell)
    console.print(grid)


def _print_counterexamples(
    console: Console, results: list[tuple[Scenario, Exploration]], profile: Profile
) -> None:
    for scenario, result in results:
        for violation in result.violations.values():
            steps = run(result.system, violation.path)
            console.rule(f"[red]{scenario.name}: {violation.property} VIOLATED")
            console.print(violation.message, markup=False)
            known = deviation(violation.property, profile, scenario.name)
            if known is not None:
                console.print(f"documented deviation of the {profile.value} profile: {known.why}")
            console.print(chart(steps), markup=False, highlight=False, soft_wrap=True)


def _report(
    results: list[tuple[Scenario, Exploration]], profile: Profile, variant: Variant | None
) -> dict[str, Any]:
    out = []
    for scenario, r in results:
        entry = system_to_json(r.system, scenario.name, profile, variant)
        entry.update(
            states=r.states,
            transitions=r.transitions,
            depth=r.depth,
            seconds=round(r.seconds, 3),
            peak_rss_bytes=r.peak_rss,
            complete=r.complete,
            stop_reason=r.stop_reason,
            ends={kind.value: count for kind, count in r.ends.items()},
            network_overflows=r.overflows,
        )
        entry["properties"] = []
        for prop in r.properties:
            violation = r.violations.get(prop.name)
            counterexample = None
            if violation is not None:
                steps = run(r.system, violation.path)
                counterexample = {
                    "message": violation.message,
                    "steps": [step_to_json(s) for s in steps],
                    "mermaid": mermaid(steps, f"{scenario.name}: {prop.name}"),
                    "chart": chart(steps),
                }
                known = deviation(prop.name, profile, scenario.name)
                if known is not None:
                    counterexample["deviation"] = known.why
            entry["properties"].append(
                {
                    "name": prop.name,
                    "holds": r.holds(prop.name),
                    "counterexample": counterexample,
                }
            )
        out.append(entry)
    return {"results": out}


def _save_counterexamples(directory: Path, report: dict[str, Any], console: Console) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    saved = 0
    for entry in report["results"]:
        for prop in entry["properties"]:
            cx = prop["counterexample"]
            if cx is None:
                continue
            stem = f"{entry['scenario']}.{prop['name']}"
            case = {k: v for k, v in entry.items() if k not in ("properties", "ends")}
            case.update(property=prop["name"], message=cx["message"], steps=cx["steps"])
            (directory / f"{stem}.json").write_text(json.dumps(case, indent=2) + "\n")
            (directory / f"{stem}.mmd").write_text(cx["mermaid"])
            (directory / f"{stem}.txt").write_text(cx["message"] + "\n\n" + cx["chart"] + "\n")
            saved += 1
    console.print(f"saved {saved} counterexample(s) in {directory}")
