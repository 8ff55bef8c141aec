"""`synack fuzz` and the replay of its findings."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from synack.model.config import Config, Profile

from . import exits, findings
from .fuzz import Run, run_example
from .fuzzing import SHRINK_LIMIT, Campaign, first_signal_stops, fuzz
from .oracle import EVENT_CLASSES
from .output import save_latest, write_json
from .targets import Target, TargetError, fuzz_config, open_target, parse_target

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2
STATES = 11
REPLAYS = 3  # each finding is re-run this many times before it is reported


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        required=True,
        help="model, variant:NAME, linux, lwip, gvisor, slirp, python:MODULE:FACTORY or "
        "agent:\"CMD ARGS\" (see 'synack list targets')",
    )
    parser.add_argument(
        "--profile",
        default="rfc9293",
        choices=[p.value for p in Profile],
        help="the specification profile the oracle runs (default rfc9293)",
    )
    parser.add_argument("--examples", type=int, default=1000, help="examples to run (1000)")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible generation")
    parser.add_argument(
        "--budget", type=float, default=300.0, help="stop after this many seconds (300)"
    )
    parser.add_argument(
        "--out", default="synack-findings", help="where findings are saved (synack-findings/)"
    )
    parser.add_argument("--json", metavar="FILE|-", help="write a JSON report")
    parser.add_argument(
        "--no-waits", action="store_true", help="never wait for a timer (fast on real stacks)"
    )
    parser.add_argument(
        "--max-findings", type=int, default=20, help="stop after this many distinct findings (20)"
    )
    parser.add_argument(
        "--shrink-time",
        type=float,
        default=SHRINK_LIMIT,
        help=f"seconds spent shrinking each finding ({SHRINK_LIMIT:g}); 0: keep each "
        "divergent example unshrunk (quick triage of a stack with many findings)",
    )
    parser.add_argument(
        "--db",
        default=".synack/hypothesis",
        help="hypothesis example database; findings are retried first next time",
    )


def oracle_config(target: Target, profile: Profile) -> Config:
    """The oracle's model configuration; a real stack's windows and MSS are its own."""
    cfg = fuzz_config(profile).with_(listener_kept=target.traits.keeps_listener)
    if not target.traits.exact_windows:
        cfg = cfg.with_(rcv_wnd=0xFFFF, mss=536)
    return cfg


def _usage(message: str) -> int:
    print(f"synack fuzz: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_fuzz(args: argparse.Namespace) -> int:
    profile = Profile(args.profile)
    try:
        spec = parse_target(args.target, profile)
    except ValueError as exc:
        return _usage(str(exc))
    if args.examples < 1 or args.budget <= 0 or args.max_findings < 1:
        return _usage("--examples, --budget and --max-findings must be positive")
    if args.shrink_time < 0:
        return _usage("--shrink-time must not be negative")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    try:
        target = open_target(spec, profile)
    except TargetError as exc:
        return _usage(str(exc))
    console = Console(stderr=True)
    # The first Ctrl-C or SIGTERM stops the campaign (fuzz polls it); what was found
    # is still re-run and saved, the reports written, then the exit status says so.
    with first_signal_stops():
        try:
            campaign = _campaign(console, target, spec, profile, args, seed)
            reports = save_findings(target, spec, profile, campaign, Path(args.out))
        finally:
            target.close()
        _summary(console, spec, profile, seed, campaign, reports)
        report = _report(spec, profile, seed, campaign, reports)
        write_json(args.json, report)
        save_latest("fuzz", report)
    if campaign.failure:
        # A target that broke down is never a pass, and its verdict is not complete:
        # exit 2 even when findings made before it were saved.
        saved = f" ({len(reports)} finding(s) made before it are saved in {args.out})"
        print(f"synack fuzz: error: {campaign.failure}{saved if reports else ''}", file=sys.stderr)
    if exits.stop_requested():
        return exits.interrupted_status()
    if campaign.failure:
        return EXIT_USAGE
    return EXIT_FINDING if reports else EXIT_OK


def _campaign(
    console: Console,
    target: Target,
    spec: str,
    profile: Profile,
    args: argparse.Namespace,
    seed: int,
) -> Campaign:
    columns = (
        TextColumn(f"[bold]fuzz {spec}[/]"),
        BarColumn(bar_width=None),
        TextColumn("{task.completed:>6,}/{task.total:,} examples"),
        TextColumn(
            "{task.fields[rate]:>6.0f}/s  cov {task.fields[cov]}  findings {task.fields[n]}"
        ),
        TimeElapsedColumn(),
    )
    live = console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not live) as bar:
        task = bar.add_task("fuzz", total=args.examples, rate=0.0, cov=0, n="0")
        last = [0.0]

        def update(c: Campaign) -> None:
            now = time.monotonic()
            if now - last[0] > 0.1:
                last[0] = now
                found = f"{len(c.findings)}{' (shrinking one)' if c.shrinking else ''}"
                bar.update(task, completed=c.examples, rate=c.rate, cov=len(c.coverage), n=found)

        return fuzz(
            target,
            oracle_config(target, profile),
            args.examples,
            args.budget,
            seed,
            Path(args.db) / f"{spec.replace(':', '-')}-{profile.value}",
            key=f"{spec}/{profile.value}",
            progress=update,
            waits=not args.no_waits,
            max_findings=args.max_findings,
            shrink_time=args.shrink_time,
        )


def save_findings(
    target: Target, spec: str, profile: Profile, campaign: Campaign, out: Path
) -> list[dict[str, Any]]:
    """Re-run each finding; save those that reproduce, in files named after their order."""
    reports: list[dict[str, Any]] = []
    cfg = oracle_config(target, profile)
    for finding in campaign.findings:
        run = finding.run
        again: int | None = None  # not replayed: the target broke down
        if not campaign.failure:
            try:
                again = sum(_reproduces(target, cfg, run) for _ in range(REPLAYS))
            except TargetError as exc:
                campaign.failure = f"while replaying a finding: {exc}"
        if again == 0:
            campaign.unreproduced += 1
            continue
        stem = f"finding-{len(reports) + 1:02d}"
        linux_cfg = oracle_config(target, Profile.LINUX)
        rules = findings.linux_rules(run, linux_cfg, target.traits)
        explanation = findings.explain(run.steps[-1], run, rules)
        data = findings.save(
            out,
            stem,
            run,
            spec,
            profile,
            explanation,
            flaky=again is not None and again < REPLAYS,
            windows=target.traits.exact_windows,
        )
        data["reproduced"] = f"{again}/{REPLAYS}" if again is not None else "not replayed"
        data["found_after_seconds"] = round(finding.seconds, 2)
        data["files"] = [str(out / f"{stem}.{ext}") for ext in ("json", "pcap", "txt")]
        reports.append(data)
    return reports


def _reproduces(target: Target, cfg: Config, run: Run) -> bool:
    again = run_example(target, run.example, cfg)
    return again.divergence is not None and again.signature() == run.signature()


def coverage_total() -> int:
    return STATES * len(EVENT_CLASSES)


def _covered(campaign: Campaign) -> list[str]:
    return sorted(label for label in campaign.coverage if label.split(" ", 1)[1] in EVENT_CLASSES)


def _summary(
    console: Console,
    spec: str,
    profile: Profile,
    seed: int,
    campaign: Campaign,
    reports: list[dict[str, Any]],
) -> None:
    out = Console()
    table = Table(
        title=f"synack fuzz --target {spec} --profile {profile.value}", title_justify="left"
    )
    for column in ("examples", "segments", "examples/s", "segments/s", "coverage", "findings"):
        table.add_column(column, justify="right")
    seconds = max(campaign.seconds, 1e-9)
    table.add_row(
        f"{campaign.examples:,}",
        f"{campaign.segments:,}",
        f"{campaign.examples / seconds:,.0f}",
        f"{campaign.segments / seconds:,.0f}",
        f"{len(_covered(campaign))}/{coverage_total()}",
        str(len(reports)),
    )
    out.print(table)
    out.print(
        f"seed {seed}; {campaign.seconds:.1f} s"
        + (f"; stopped: {campaign.stopped}" if campaign.stopped else "")
        + (
            f"; {campaign.unreproduced} divergence(s) did not reproduce and were dropped"
            if campaign.unreproduced
            else ""
        )
    )
    if campaign.anomalies:
        out.print(f"{len(campaign.anomalies)} anomalies, e.g. {campaign.anomalies[0]}")
    for data in reports:
        out.print(f"[bold red]finding[/] {data['files'][0]}: {data['divergence']['summary']}")
        out.print(
            f"  at {data['divergence']['event']} in {', '.join(data['divergence']['states'])}"
            f"; reproduced {data['reproduced']}; pcap {data['files'][1]}"
        )
        if data["explanation"]:
            out.print(f"  explanation: {data['explanation']}")


def _report(
    spec: str, profile: Profile, seed: int, campaign: Campaign, reports: list[dict[str, Any]]
) -> dict[str, Any]:
    covered = _covered(campaign)
    return {
        "target": spec,
        "profile": profile.value,
        "seed": seed,
        "examples": campaign.examples,
        "segments": campaign.segments,
        "seconds": round(campaign.seconds, 3),
        "examples_per_second": round(campaign.rate, 1),
        "stopped": campaign.stopped or None,
        "coverage": {
            "covered": len(covered),
            "total": coverage_total(),
            "transitions": {label: campaign.coverage[label] for label in covered},
        },
        "anomalies": campaign.anomalies[:100],
        "findings": reports,
    }


# ---------------------------------------------------------------- replay


def replay_finding(data: dict[str, Any], target_spec: str | None) -> int:
    """Re-run a saved finding: 1 if the same divergence happens again, 0 if not, 2 on error."""
    try:
        saved_target, profile, example = findings.load(data)
        spec = parse_target(target_spec or saved_target, profile)
    except ValueError as exc:
        print(f"synack replay: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        target = open_target(spec, profile)
    except TargetError as exc:
        print(f"synack replay: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        run = run_example(target, example, oracle_config(target, profile))
    finally:
        target.close()
    print(findings.chart(run, target.traits.exact_windows))
    if run.divergence is None:
        print(f"\nnot reproduced: {spec} behaved as the {profile.value} specification allows")
        return EXIT_OK
    now = findings.finding_json(run, spec, profile, None, False)["divergence"]
    same = (now["event"], [s["flags"] for s in now["observed"]]) == findings.signature_of(data)
    verdict = "reproduced" if same else "a different divergence"
    print(f"\n{verdict}: {now['summary']}")
    return EXIT_FINDING
