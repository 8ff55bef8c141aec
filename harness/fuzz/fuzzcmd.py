"""`synack fuzz` and the replay of its findings."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from synack.harness.common import exits
from synack.harness.common.validate import nonnegative_float, positive_float, positive_int
from synack.harness.fuzz import findings
from synack.harness.fuzz.fuzz import Run, run_example
from synack.harness.fuzz.fuzzing import SHRINK_LIMIT, Campaign, Finding, first_signal_stops, fuzz
from synack.harness.fuzz.oracle import EVENT_CLASSES
from synack.harness.fuzz.targets.base import Target, TargetError
from synack.harness.fuzz.targets.model import fuzz_config
from synack.harness.fuzz.targets.registry import open_target, parse_target
from synack.harness.output import save_latest, write_json
from synack.model.config import RFC_ALLOWED, Config, Profile, Rule

EXIT_OK, EXIT_FINDING, EXIT_USAGE = exits.EXIT_OK, exits.EXIT_VERDICT, exits.EXIT_USAGE
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
    parser.add_argument(
        "--examples", type=positive_int, default=1000, help="examples to run (1000)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible generation")
    parser.add_argument(
        "--budget", type=positive_float, default=300.0, help="stop after this many seconds (300)"
    )
    parser.add_argument(
        "--out", default="synack-findings", help="where findings are saved (synack-findings/)"
    )
    parser.add_argument("--json", metavar="FILE|-", help="write a JSON report")
    parser.add_argument(
        "--no-waits", action="store_true", help="never wait for a timer (fast on real stacks)"
    )
    parser.add_argument(
        "--max-findings",
        type=positive_int,
        default=20,
        help="stop after this many groups of findings (root causes) (20)",
    )
    parser.add_argument(
        "--shrink-time",
        type=nonnegative_float,
        default=SHRINK_LIMIT,
        help=f"seconds spent shrinking each group's representative ({SHRINK_LIMIT:g}); 0: "
        "keep each divergent example unshrunk (quick triage of a stack with many findings)",
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


MEMBER_FILES = 20
"""Members of a group saved as files beside its representative; the rest are listed."""


@dataclass
class _Group:
    """Findings of one root cause: a representative and the other members."""

    key: findings.Key
    rules: tuple[Rule, ...] | None
    members: list[Finding]  # the representative first once chosen
    examples: int  # divergent examples of the group the campaign met
    case: Finding | None = None  # the campaign's (shrunk) case, if it is in this group


def save_findings(
    target: Target, spec: str, profile: Profile, campaign: Campaign, out: Path
) -> list[dict[str, Any]]:
    """Save the findings grouped by root cause; one report (a dict) per group.

    A group's representative (the campaign's shrunk case, re-run `REPLAYS`
    times; if it never reproduces, the first member that does) is saved as
    finding-NN.json/.pcap/.txt; the other members, as drawn and not re-run,
    as finding-NN-members/finding-NN-MM.*.  A group's members that the linux
    profile explains by other rules make a group of their own.  Each report
    is the representative's JSON plus the group: its signature, count and
    members; `findings.txt` in `out` lists the groups.
    """
    cfg = oracle_config(target, profile)
    linux_cfg = oracle_config(target, Profile.LINUX)
    groups: list[_Group] = []
    for finding in campaign.findings:
        by_rules: dict[tuple[str, ...] | None, _Group] = {}
        for member in [finding, *finding.members]:
            rules = findings.linux_rules(member.run, linux_cfg, target.traits)
            ids = None if rules is None else tuple(r.id for r in rules)
            if ids not in by_rules:
                by_rules[ids] = _Group(finding.key, rules, [], 0)
            by_rules[ids].members.append(member)
        split = list(by_rules.values())
        for group in split:
            group.examples = len(group.members)
        # The repeats: divergent examples of the group that were no new member.
        split[0].examples += max(0, finding.examples - 1 - len(finding.members))
        split[0].case = finding
        groups.extend(split)
    reports: list[dict[str, Any]] = []
    for group in groups:
        again = _choose_representative(target, cfg, campaign, group)
        if again == 0:
            continue
        reports.append(_save_group(out, len(reports) + 1, group, again, target, spec, profile))
    _write_index(out, reports)
    return reports


def _choose_representative(
    target: Target, cfg: Config, campaign: Campaign, group: _Group
) -> int | None:
    """Put first the first member that reproduces; how often it did (None: not re-run).

    Members that never reproduce before it are dropped (`campaign.unreproduced`).
    """
    while group.members:
        if campaign.failure:
            return None  # the target broke down: nothing more is re-run
        try:
            again = sum(_reproduces(target, cfg, group.members[0].run) for _ in range(REPLAYS))
        except TargetError as exc:
            campaign.failure = f"while replaying a finding: {exc}"
            return None
        if again:
            return again
        campaign.unreproduced += 1
        group.members.pop(0)
    return 0


def _save_group(
    out: Path,
    number: int,
    group: _Group,
    again: int | None,
    target: Target,
    spec: str,
    profile: Profile,
) -> dict[str, Any]:
    stem = f"finding-{number:02d}"
    first, others = group.members[0], group.members[1:]
    signature = findings.signature(group.key, group.rules)
    signature["text"] = findings.signature_text(signature)
    runs = [m.run for m in group.members]
    where = {
        "states": sorted({s for r in runs if r.divergence for s in r.divergence.candidates}),
        "events": sorted({r.steps[-1].event for r in runs}),
    }
    listed: list[dict[str, Any]] = []
    folder = out / f"{stem}-members"
    for index, member in enumerate(others, start=2):
        name = f"{stem}-{index:02d}"
        extra = {
            "group": {"number": number, "representative": f"{stem}.json", "signature": signature}
        }
        entry = _member_entry(member, target, group.rules)
        if index - 1 <= MEMBER_FILES:
            data = findings.save(
                folder, name, member.run, spec, profile, entry["explanation"], flaky=False,
                windows=target.traits.exact_windows, extra=extra,
            )  # fmt: skip
            entry["summary"] = data["divergence"]["summary"]
            entry["files"] = [str(folder / f"{name}.{ext}") for ext in ("json", "pcap", "txt")]
            entry["replay"] = data["replay"]
        listed.append(entry)
    files = [str(out / f"{stem}.{ext}") for ext in ("json", "pcap", "txt")]
    summary = {
        "number": number,
        "signature": signature,
        "representative": files,
        "count": len(group.members),
        "examples": group.examples,
        **where,
        # False: the representative is a member as drawn (the shrunk case did not
        # reproduce, or the linux rules that explain it are other ones).
        "representative_is_shrunk_case": first is group.case,
        "members": listed,
    }
    explanation = findings.explain(first.run.steps[-1], first.run, group.rules)
    data = findings.save(
        out, stem, first.run, spec, profile, explanation,
        flaky=again is not None and again < REPLAYS, windows=target.traits.exact_windows,
        extra={"group": summary},
    )  # fmt: skip
    data["reproduced"] = f"{again}/{REPLAYS}" if again is not None else "not replayed"
    data["found_after_seconds"] = round(first.seconds, 2)
    data["files"] = files
    return data


def _member_entry(
    member: Finding, target: Target, rules: tuple[Rule, ...] | None
) -> dict[str, Any]:
    run = member.run
    assert run.divergence is not None
    divergence = run.divergence
    return {
        "event": run.steps[-1].event,
        "states": list(divergence.candidates),
        "actions": len(run.example.actions),
        "summary": divergence.summary(),
        "explanation": findings.explain(run.steps[-1], run, rules),
        "found_after_seconds": round(member.seconds, 2),
        "files": None,
        "replay": None,
    }


def _write_index(out: Path, reports: list[dict[str, Any]]) -> None:
    """findings.txt: each group's signature, count, representative and other members."""
    if not reports:
        return
    lines: list[str] = []
    for data in reports:
        group = data["group"]
        lines.append(
            f"group {group['number']} ({group['count']} finding(s), {group['examples']} "
            f"divergent example(s)): {group['signature']['text']}"
        )
        lines.append(f"  in {', '.join(group['states'])}; at {', '.join(group['events'])}")
        lines.append(f"  representative {data['files'][0]}: {data['divergence']['summary']}")
        for member in group["members"]:
            where = member["files"][0] if member["files"] else "(not saved)"
            lines.append(f"  member {where}: at {member['event']} in "
                         f"{', '.join(member['states'])}: {member['summary']}")  # fmt: skip
        lines.append("")
    (out / "findings.txt").write_text("\n".join(lines))


def _reproduces(target: Target, cfg: Config, run: Run) -> bool:
    again = run_example(target, run.example, cfg)
    return again.divergence is not None and again.signature() == run.signature()


def coverage_total() -> int:
    return STATES * len(EVENT_CLASSES)


def _covered(campaign: Campaign) -> list[str]:
    return sorted(label for label in campaign.coverage if label.split(" ", 1)[1] in EVENT_CLASSES)


SHOWN_MEMBERS = 5  # members of a group the console lists (all are in findings.txt)


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
    columns = ("examples", "segments", "examples/s", "segments/s", "coverage", "groups", "findings")
    for column in columns:
        table.add_column(column, justify="right")
    seconds = max(campaign.seconds, 1e-9)
    table.add_row(
        f"{campaign.examples:,}",
        f"{campaign.segments:,}",
        f"{campaign.examples / seconds:,.0f}",
        f"{campaign.segments / seconds:,.0f}",
        f"{len(_covered(campaign))}/{coverage_total()}",
        str(len(reports)),
        str(sum(data["group"]["count"] for data in reports)),
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
    if campaign.allowed:
        out.print(
            "RFC-allowed variations (no findings): "
            + "; ".join(f"{i} x{n} ({RFC_ALLOWED[i]})" for i, n in sorted(campaign.allowed.items()))
        )
    if campaign.anomalies:
        out.print(f"{len(campaign.anomalies)} anomalies, e.g. {campaign.anomalies[0]}")
    for data in reports:
        for line in _group_lines(data):
            out.print(line, soft_wrap=True, highlight=False)


def _group_lines(data: dict[str, Any]) -> list[str]:
    """A group in the console: its signature, where, the representative, the others."""
    group, divergence = data["group"], data["divergence"]
    shrunk = "shrunk case" if group["representative_is_shrunk_case"] else "as drawn"
    lines = [
        f"[bold red]group {group['number']}[/]: {escape(group['signature']['text'])}",
        f"  {group['count']} finding(s), {group['examples']} divergent example(s); "
        f"in {', '.join(group['states'])}; at {', '.join(group['events'])}",
        f"  [bold]finding[/] {data['files'][0]} ({shrunk}, reproduced {data['reproduced']}): "
        + escape(divergence["summary"]),
        f"    at {divergence['event']} in {', '.join(divergence['states'])}; "
        f"pcap {data['files'][1]}",
    ]
    if data["explanation"]:
        lines.append(f"    explanation: {escape(data['explanation'])}")
    members = group["members"]
    for member in members[:SHOWN_MEMBERS]:
        where = member["files"][0] if member["files"] else "(not saved)"
        lines.append(
            f"  also {where}: at {member['event']} in {', '.join(member['states'])}: "
            + escape(member["summary"])
        )
    if len(members) > SHOWN_MEMBERS:
        index = Path(data["files"][0]).parent / "findings.txt"
        lines.append(f"  and {len(members) - SHOWN_MEMBERS} more (all in {index})")
    return lines


def _report(
    spec: str, profile: Profile, seed: int, campaign: Campaign, reports: list[dict[str, Any]]
) -> dict[str, Any]:
    """The JSON report; `findings` has one entry per group: the representative's
    finding (its divergence, steps, files, replay) with the group's signature,
    count and other members under `group`."""
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
        "allowed": {
            i: {"steps": n, "label": RFC_ALLOWED[i]} for i, n in sorted(campaign.allowed.items())
        },
        "groups": len(reports),
        "distinct_findings": sum(data["group"]["count"] for data in reports),
        "findings": reports,
    }


# ---------------------------------------------------------------- replay


def replay_finding(data: dict[str, Any], target_spec: str | None, case: str = "CASE.json") -> int:
    """Re-run a saved finding: 1 if the same divergence happens again, 0 if not, 2 on error.

    The target named in the file runs only if it is built in (casefile.built_in):
    an agent: or python: target would run a command or code the file chose.
    """
    import shlex

    from synack.harness.fuzz import casefile

    try:
        casefile.check_finding(data)
        saved_target, profile, example = findings.load(data)
        if target_spec is None and not casefile.built_in(saved_target):
            again = f"synack replay {shlex.quote(case)} --target {shlex.quote(saved_target)}"
            raise ValueError(
                f"{case} names the target {saved_target!r}, which runs a command or code of "
                f"its choosing; a replay runs such a target only when given on the command "
                f"line: {again}"
            )
        spec = parse_target(target_spec or saved_target, profile)
    except casefile.CaseError as exc:
        print(f"synack replay: error: {case}: {exc}", file=sys.stderr)
        return exits.EXIT_USAGE
    except ValueError as exc:
        print(f"synack replay: error: {exc}", file=sys.stderr)
        return exits.EXIT_USAGE
    try:
        target = open_target(spec, profile)
    except TargetError as exc:
        print(f"synack replay: error: {exc}", file=sys.stderr)
        return exits.EXIT_USAGE
    try:
        run = run_example(target, example, oracle_config(target, profile))
    except TargetError as exc:
        print(f"synack replay: error: the target failed: {exc}", file=sys.stderr)
        return exits.EXIT_USAGE
    finally:
        target.close()
    print(findings.chart(run, target.traits.exact_windows))
    if run.divergence is None:
        print(f"\nnot reproduced: {spec} behaved as the {profile.value} specification allows")
        return exits.EXIT_OK
    now = findings.finding_json(run, spec, profile, None, False)["divergence"]
    same = (now["event"], [s["flags"] for s in now["observed"]]) == findings.signature_of(data)
    verdict = "reproduced" if same else "a different divergence"
    print(f"\n{verdict}: {now['summary']}")
    return exits.EXIT_VERDICT
