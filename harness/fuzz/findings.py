"""Fuzz findings on disk: a JSON replay file, a pcap and a text sequence chart each.

The JSON file holds the abstract example (replayable against any target:
sequence numbers are re-resolved against the target's own ISNs), the
steps as observed, and the divergence.  The pcap holds the packets as
they crossed the wire (the kernel's own bytes for `linux`; encoded from
the segments for in-process targets).  The chart shows, step by step,
what the peer sent, what the target answered and, at the divergence,
what the specification allows instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synack.harness.check.counterexample import segment_to_json
from synack.harness.fuzz.fuzz import (
    Run,
    StepRecord,
    consistent_under,
    example_from_json,
    example_to_json,
)
from synack.harness.fuzz.oracle import Divergence, same_segment
from synack.harness.fuzz.targets.base import Traits, UserOutput
from synack.harness.fuzz.targets.pcap import write_pcap
from synack.harness.fuzz.targets.wire import Packet, encode
from synack.model.config import PROFILE_RULES, Config, Profile, Rule
from synack.model.endpoint import step
from synack.model.segment import Flags, Segment
from synack.model.tcb import deleted
from synack.model.types import Deliver, Emit, Event, OpenCall, Signal

Json = dict[str, Any]
KIND = "synack-fuzz-finding"
PEER, TARGET, PEER_PORT, TARGET_PORT = "198.18.0.2", "198.18.0.1", 40000, 5000


def segment_text(seg: Segment, windows: bool) -> str:
    return str(seg) + (f"<WND={seg.wnd}>" if windows else "")


def chart(run: Run, windows: bool = True) -> str:
    """Expected vs observed, one block per step."""
    # No target reports its own state (Observation carries none): the states
    # shown are the model's, the candidates the oracle holds consistent.
    lines = [f"{'#':>3}  {'peer (synack)':<44} model [states before -> after]"]
    for number, record in enumerate(run.steps):
        moved = f"[{'|'.join(record.states)} -> {'|'.join(record.after) or '?'}]"
        if record.sent is not None:
            lines.append(f"{number:>3}  {segment_text(record.sent, windows) + ' -->':<44} {moved}")
        else:
            lines.append(f"{number:>3}  {'(' + record.action + ')':<44} {moved}")
        for seg in record.observed.segments:
            lines.append(f"{'':>3}  {'<-- ' + segment_text(seg, windows):<44}")
        for user in record.observed.user:
            lines.append(f"{'':>3}  {'':<44} app: {_user_text(user)}")
        for result in record.observed.results:
            lines.append(f"{'':>3}  {'':<44} app: {result}")
    divergence = run.divergence
    if divergence is not None:
        lines.append("")
        lines.append(f"DIVERGENCE at step {len(run.steps) - 1}: no state the specification allows")
        lines.append(f"  ({', '.join(divergence.candidates)}) explains what the target did:")
        lines.append(f"  {divergence.summary()}")
        seen = ", ".join(segment_text(s, windows) for s in divergence.observed.segments)
        lines.append(f"  observed: {seen or 'no segment'}")
        for user in divergence.observed.user:
            lines.append(f"            app: {_user_text(user)}")
        for path in divergence.expected:
            allowed = ", ".join(segment_text(s, windows) for s in path.segments)
            lines.append(f"  expected from {path.before.state}: {allowed or 'no segment'}")
            for user in path.user:
                lines.append(f"            app: {_user_text(user)}")
    return "\n".join(lines)


def _user_text(user: object) -> str:
    reply = getattr(user, "reply", None)
    if reply is not None:
        return f'"{reply.value}"'
    data = getattr(user, "data", b"")
    return f"delivered {len(data)} octets"


def packets_of(run: Run) -> list[tuple[float, bytes]]:
    """The run's packets: as captured, or encoded from the segments at 1 ms steps."""
    captured = [p for record in run.steps for p in record.observed.packets]
    if captured:
        return captured
    packets: list[tuple[float, bytes]] = []
    clock = 1_700_000_000.0
    for record in run.steps:
        if record.sent is not None:
            clock += 0.001
            packets.append(
                (clock, encode(Packet(PEER, TARGET, PEER_PORT, TARGET_PORT, record.sent)))
            )
        for seg in record.observed.segments:
            clock += 0.001
            packets.append((clock, encode(Packet(TARGET, PEER, TARGET_PORT, PEER_PORT, seg))))
    return packets


# ------------------------------------------------------------------ groups
#
# Findings are grouped by root cause, read as the first thing the target did
# differently: the kinds of segment it sent where the specification sends
# others; or, the kinds agreeing, the fields that differ; or, the segments
# agreeing, what the application was told.  Once saved, the linux profile
# rules that explain it are part of the signature too.  The states and event
# classes a group was seen in are listed, not part of the key: a stack that
# never sends its RSTs, or one that skips TIME-WAIT, diverges in many of them
# for one reason.

Key = tuple[object, ...]


def segment_kind(seg: Segment) -> str:
    """A segment's kind: RST (whatever else is set), else its flags without PSH, +text."""
    if seg.rst:
        return "RST"
    return str(Flags(seg.bits & ~int(Flags.PSH))) + ("+text" if seg.payload else "")


def kinds(segments: tuple[Segment, ...]) -> str:
    return " ".join(segment_kind(s) for s in segments) or "nothing"


def told_kinds(user: tuple[UserOutput, ...]) -> str:
    """What the application is told, by kind: replies verbatim, text as such."""
    told = (f'"{o.reply.value}"' if isinstance(o, Signal) else "text" for o in user)
    return ", ".join(told) or "nothing"


def _fields(seen: Segment, wanted: Segment) -> list[str]:
    fields = []
    if seen.has_ack != wanted.has_ack:
        fields.append("ACK bit")
    if seen.seq != wanted.seq:
        fields.append("SEQ")
    if seen.has_ack and wanted.has_ack and seen.ack != wanted.ack:
        fields.append("ACK")
    if seen.payload != wanted.payload:
        fields.append("text")
    if wanted.urg and seen.up != wanted.up:
        fields.append("urgent pointer")
    return fields


def _differing(seen: tuple[Segment, ...], wanted: tuple[Segment, ...]) -> tuple[str, ...]:
    fields: list[str] = []
    for a, b in zip(seen, wanted, strict=True):
        fields += [f for f in _fields(a, b) if f not in fields]
    return tuple(fields)


def behaves_as_closed(divergence: Divergence, event: Event | None, traits: Traits) -> bool:
    """Whether the target did what an endpoint without the connection (CLOSED) does.

    A target that lost its TCB (it skipped TIME-WAIT, say) answers every segment
    with RFC 9293 3.10.7.1's reset and every call with "connection does not
    exist", whatever the event: one cause.  Only an answer counts (a segment or
    a notification): doing nothing is what many other bugs look like too.
    """
    if event is None or isinstance(event, OpenCall) or not divergence.expected:
        return False
    if set(divergence.candidates) <= {"CLOSED"}:
        return False
    _, outputs = step(deleted(divergence.expected[0].before), event)
    segments = tuple(o.segment for o in outputs if isinstance(o, Emit))
    told = divergence.told(tuple(o for o in outputs if isinstance(o, Signal | Deliver)))
    observed = divergence.observed
    if (not segments and not told) or len(segments) != len(observed.segments):
        return False
    return told == divergence.told(observed.user) and all(
        same_segment(e, o, traits.exact_windows)
        for e, o in zip(segments, observed.segments, strict=True)
    )


def group_key(run: Run, traits: Traits) -> Key:
    """What a divergence is about, independent of where it happened: its group.

    (what differs, the specification's kinds, the target's kind, the fields).
    """
    assert run.divergence is not None
    divergence = run.divergence  # its `replies` are the target's (the oracle sets them)
    if behaves_as_closed(divergence, run.steps[-1].model_event, traits):
        return ("closed", divergence.candidates, "CLOSED", ())
    observed = divergence.observed
    seen = kinds(observed.segments)
    expected = tuple(sorted({kinds(p.segments) for p in divergence.expected}))
    if seen not in expected:
        return ("segments", expected, seen, ())
    same = [p for p in divergence.expected if kinds(p.segments) == seen]
    fields = min((_differing(observed.segments, p.segments) for p in same), key=len)
    if fields:
        return ("segments", (seen,), seen, fields)
    told = told_kinds(divergence.told(observed.user))
    said = tuple(sorted({told_kinds(divergence.told(p.user)) for p in same}))
    if told not in said:
        return ("told", said, told, ())
    if all(divergence.told(p.user) != divergence.told(observed.user) for p in same):
        return ("told", said, told, ("text delivered",))
    return ("segments", (seen,), seen, ("WND",))


def signature(key: Key, rules: tuple[Rule, ...] | None) -> Json:
    """A group's signature as JSON: what differs, expected vs observed, explaining rules."""
    differs, expected, observed, fields = key
    assert isinstance(expected, tuple) and isinstance(fields, tuple)
    return {
        "differs": differs,
        "expected": list(expected),
        "observed": observed,
        "fields": list(fields),
        "rules": None if rules is None else [r.id for r in rules],
    }


def signature_text(sig: Json) -> str:
    """One line: what the target did against what the specification does, and why."""
    expected = " | ".join(sig["expected"])
    if sig["differs"] == "closed":
        head = f"answers as if it had no connection (CLOSED) in {expected}"
        return f"{head}{_rules_text(sig['rules'])}"
    verb = "tells the application" if sig["differs"] == "told" else "sends"
    if sig["fields"]:
        head = f"{verb} {sig['observed']} with another {', '.join(sig['fields'])}"
    else:
        head = f"{verb} {sig['observed']} where the specification {verb.split()[0]} {expected}"
    return f"{head}{_rules_text(sig['rules'])}"


def _rules_text(rules: list[str] | None) -> str:
    if rules is None:
        return " (no profile describes it)"
    if not rules:
        return " (the linux profile describes it)"
    return f" (linux rules {', '.join(rules)})"


# ------------------------------------------------------------ explanations

RFC_TEXT = {
    "rst": "RFC 9293 3.10.7.4, second (check the RST bit): in a synchronized state an "
    "acceptable RST resets the connection ('enter the CLOSED state, delete the TCB')",
    "syn": "RFC 9293 3.10.7.4, fourth (check the SYN bit): a SYN in the window of a "
    "synchronized connection is an error, answered with a reset",
    "ack": "RFC 9293 3.10.7.4, fifth (check the ACK field): 'If the ACK is a duplicate "
    "(SEG.ACK =< SND.UNA), it can be ignored'",
    "abort": "RFC 9293 3.10.5 (ABORT): 'send a reset segment: <SEQ=SND.NXT><CTL=RST>'",
}


def rfc_section(record: StepRecord) -> str:
    """The part of RFC 9293 section 3.10 that says what should have happened."""
    states = set(record.states)
    sent = record.sent
    if sent is None:
        calls = {"send": "3.10.2 SEND", "recv": "3.10.3 RECEIVE", "shutdown": "3.10.4 CLOSE"}
        name = record.action.split("(")[0]
        if name in calls:
            return f"RFC 9293 {calls[name]}"
        if name == "abort":
            return RFC_TEXT["abort"]
        return "RFC 9293 3.10.8 (timeouts)"
    if states <= {"CLOSED"}:
        return "RFC 9293 3.10.7.1 (CLOSED): anything but a RST is answered with a RST"
    if states <= {"LISTEN"}:
        return "RFC 9293 3.10.7.2 (LISTEN): first RST, second ACK, third SYN, else drop"
    if states <= {"SYN-SENT"}:
        return "RFC 9293 3.10.7.3 (SYN-SENT): first the ACK, second RST, fourth SYN"
    if sent.rst:
        return RFC_TEXT["rst"]
    if sent.syn:
        return RFC_TEXT["syn"]
    return (
        "RFC 9293 3.10.7.4: first the sequence number (Table 6: an unacceptable segment "
        "is answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>), then RST, SYN, ACK, text, FIN"
    )


def linux_rules(run: Run, linux_cfg: Config, traits: Traits) -> tuple[Rule, ...] | None:
    """The linux profile's rules that explain what the target did in `run`.

    None: the linux profile does not explain it either.  Otherwise a minimal
    set of rules that does: the rules are switched off one at a time (the
    later ones first) and stay off while the run remains explained, so every
    rule returned is needed, and of two rules that explain the same thing
    the one listed first in PROFILE_RULES is kept.
    """
    if not consistent_under(run, linux_cfg, traits):
        return None
    rules = PROFILE_RULES[Profile.LINUX]
    off: frozenset[str] = frozenset()
    for rule in reversed(rules):
        trial = off | {rule.id}
        if consistent_under(run, linux_cfg.with_(disabled=trial), traits):
            off = trial
    return tuple(rule for rule in rules if rule.id not in off)


def explain(record: StepRecord, run: Run, rules: tuple[Rule, ...] | None) -> str | None:
    """The RFC 9293 text, and the profile rules (`linux_rules`) that describe the target."""
    if run.divergence is None:
        return None
    text = rfc_section(record)
    if rules is None:
        return f"{text}; no profile describes what the target did"
    if not rules:
        return f"{text}; the linux profile describes what the target did (--profile linux)"
    named = "; ".join(
        f"profile linux rule {r.id}: {r.behaviour} (source: {r.source}"
        + (f"; RFC-allowed alone: {r.rfc_allowed})" if r.rfc_allowed else ")")
        for r in rules
    )
    return f"{text}. Linux follows {named}"


# ------------------------------------------------------------------ files


def finding_json(
    run: Run,
    target: str,
    profile: Profile,
    explanation: str | None,
    flaky: bool,
) -> Json:
    """The finding as saved (the summary shows replies only where the target reports
    them: the oracle made the divergence with the target's traits)."""
    assert run.divergence is not None
    last = run.steps[-1]
    return {
        "kind": KIND,
        "version": 1,
        "target": target,
        "profile": profile.value,
        "example": example_to_json(run.example),
        "divergence": {
            "step": len(run.steps) - 1,
            "event": last.event,
            "states": list(run.divergence.candidates),
            "summary": run.divergence.summary(),
            "observed": [segment_to_json(s) for s in run.divergence.observed.segments],
            "expected": [
                {"from": str(p.before.state), "segments": [segment_to_json(s) for s in p.segments]}
                for p in run.divergence.expected
            ],
        },
        "explanation": explanation,
        "flaky": flaky,
        "steps": [
            {
                "action": r.action,
                "states": list(r.states),
                "sent": segment_to_json(r.sent) if r.sent is not None else None,
                "observed": [segment_to_json(s) for s in r.observed.segments],
                "results": list(r.observed.results),
                "anomalies": list(r.observed.anomalies),
                "after": list(r.after),
            }
            for r in run.steps
        ],
    }


def save_trace(out: Path, stem: str, run: Run, windows: bool, note: str) -> None:
    """Write STEM.pcap and STEM.txt (the chart and `note`) for a run that is no finding:
    the evidence of an RFC-allowed variation."""
    out.mkdir(parents=True, exist_ok=True)
    write_pcap(out / f"{stem}.pcap", packets_of(run))
    (out / f"{stem}.txt").write_text(f"{chart(run, windows)}\n\n{note}\n")


def save(
    out: Path,
    stem: str,
    run: Run,
    target: str,
    profile: Profile,
    explanation: str | None,
    flaky: bool,
    windows: bool,
    extra: Json | None = None,
) -> Json:
    """Write STEM.json, STEM.pcap and STEM.txt into `out`; returns the JSON written
    (`extra`: more keys for it, its group, say)."""
    out.mkdir(parents=True, exist_ok=True)
    data = finding_json(run, target, profile, explanation, flaky)
    data.update(extra or {})
    data["pcap"] = f"{stem}.pcap"
    data["chart"] = f"{stem}.txt"
    data["replay"] = f"synack replay {out / (stem + '.json')}"
    write_pcap(out / f"{stem}.pcap", packets_of(run))
    text = chart(run, windows)
    if explanation:
        text += f"\n\nexplanation: {explanation}"
    (out / f"{stem}.txt").write_text(text + "\n")
    (out / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    return data


def load(data: Json) -> tuple[str, Profile, Any]:
    """(target, profile, example) of a saved finding; raises ValueError if malformed.

    `casefile.check_finding` checks the types and bounds of every field first.
    """
    if data.get("kind") != KIND:
        raise ValueError(f"not a synack fuzz finding (kind {data.get('kind')!r})")
    try:
        return str(data["target"]), Profile(data["profile"]), example_from_json(data["example"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed finding: missing or bad {exc}") from None


def signature_of(data: Json) -> tuple[str, Sequence[object]]:
    """The saved divergence's (event, flags observed); ValueError if it is malformed."""
    try:
        divergence = data["divergence"]
        return str(divergence["event"]), [s["flags"] for s in divergence["observed"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed finding: missing or bad divergence {exc}") from None
