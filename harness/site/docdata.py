"""What the documentation shows, computed by the engines: one job per piece.

A job is a plain tuple (picklable, so jobs run in worker processes) and
its result is JSON.  Results are cached on disk under a key made of the
job and a fingerprint of the source of synack's packages: change a line of
the model, the properties or the harness and every result is computed
again, so the cache can never serve documentation of another
specification.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import synack.harness
import synack.model
import synack.properties
from synack.harness.check.counterexample import chart, exchanges, mermaid, run
from synack.harness.check.explore import Exploration, Limits, explore
from synack.harness.site.endpoint_graph import explore_endpoint
from synack.model.config import Profile, Variant
from synack.model.scenarios import EXPLORATION_CONFIG, SCENARIOS
from synack.model.system import SystemState, apply, enabled
from synack.properties.catalogue import CATALOGUE, deviation
from synack.properties.catalogue import get as get_property

Json = dict[str, Any]
Job = tuple[str, ...]
DOCS_CACHE = Path(".synack") / "cache" / "docs"
"""The default result cache (project-local)."""
SMALL_GRAPH = 400
"""Scenarios with at most this many states get their whole global graph drawn."""


def source_fingerprint() -> str:
    """BLAKE2b of every Python source file of synack's packages."""
    digest = hashlib.blake2b(digest_size=16)
    for package in (synack.model, synack.properties, synack.harness):
        folder = Path(package.__path__[0])
        for path in sorted(folder.rglob("*.py")):
            name = path.relative_to(folder).as_posix()
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# ------------------------------------------------------------------ jobs


def endpoint_job(profile: str) -> Json:
    graph = explore_endpoint(EXPLORATION_CONFIG.with_(profile=Profile(profile)))
    return {
        "profile": profile,
        "tcbs": graph.tcbs,
        "steps": graph.steps,
        "complete": graph.complete,
        "transitions": [
            {
                "state": t.state.value,
                "event": t.event,
                "guard": t.guard,
                "next_state": t.next_state.value,
                "outputs": t.outputs,
                "rfc_step": t.rfc_step,
                "count": graph.transitions[t],
                "example": graph.example[t],
            }
            for t in graph.sorted()
        ],
    }


class PairRecorder:
    """An `explore` visit hook: the (client state, server state) pair of each node."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def __call__(self, node: int, state: SystemState) -> None:
        assert node == len(self.pairs)
        self.pairs.append((state.client.state.value, state.server.state.value))


def scenario_job(name: str, profile: str) -> Json:
    system = SCENARIOS[name].build(Profile(profile))
    pairs = PairRecorder()
    limits = Limits(max_memory=Limits.default_memory())
    result = _finished(explore(system, CATALOGUE, limits, visit=pairs))
    return scenario_record(name, profile, result, pairs)


def scenario_record(name: str, profile: str, result: Exploration, pairs: PairRecorder) -> Json:
    """What the site shows of one scenario's exploration (the whole catalogue checked)."""
    edges: Counter[tuple[str, str, str, str]] = Counter()
    at = pairs.pairs
    for source, target in result.store.graph.edges():
        if at[source] != at[target]:
            edges[(*at[source], *at[target])] += 1
    properties = []
    for prop in CATALOGUE:
        holds = result.holds(prop.name)
        violation = result.violations.get(prop.name)
        known = deviation(prop.name, Profile(profile), name) if violation else None
        properties.append(
            {
                "name": prop.name,
                "holds": holds,
                "message": violation.message if violation else None,
                "deviation": known.why if known else None,
            }
        )
    small = result.states <= SMALL_GRAPH
    return {
        "scenario": name,
        "profile": profile,
        "states": result.states,
        "transitions": result.transitions,
        "depth": result.depth,
        "complete": result.complete,
        "stop_reason": result.stop_reason,
        "ends": {kind.value: count for kind, count in result.ends.items()},
        "properties": properties,
        "pair_nodes": [[c, s, n] for (c, s), n in sorted(Counter(at).items())],
        "pair_edges": [[*key, n] for key, n in sorted(edges.items())],
        "global": _global_graph(result.system) if small else None,
    }


def _global_graph(system: Any) -> Json:
    """Every state and every labelled transition of a small system (breadth-first)."""
    ids = {system.initial: 0}
    order = [system.initial]
    edges = []
    for state in order:
        for action in enabled(system, state):
            after, info = apply(system, state, action)
            if after not in ids:
                ids[after] = len(order)
                order.append(after)
            edges.append([ids[state], ids[after], info.label])
    states = [[s.client.state.value, s.server.state.value, len(s.net)] for s in order]
    return {"states": states, "edges": edges}


def counterexample_job(prop_name: str, variant: str, scenario: str, profile: str) -> Json:
    system = SCENARIOS[scenario].build(Profile(profile), Variant(variant))
    prop = get_property(prop_name)
    limits = Limits(max_memory=Limits.default_memory(), first_violation=True)
    result = _finished(explore(system, (prop,), limits))
    violation = result.violations.get(prop_name)
    data: Json = {"property": prop_name, "variant": variant, "scenario": scenario}
    data["profile"] = profile
    if violation is None:
        data["found"] = False
        return data
    steps = run(system, violation.path)
    title = f"{variant} on {scenario}: {prop_name}"
    data.update(
        found=True,
        message=violation.message,
        length=len(steps),
        mermaid=mermaid(steps, title),
        chart=chart(steps),
        rows=[{**asdict(row), "side": row.side.value} for row in exchanges(steps)],
    )
    return data


RUNNERS: dict[str, Callable[..., Json]] = {
    "endpoint": endpoint_job,
    "scenario": scenario_job,
    "counterexample": counterexample_job,
}


def run_job(job: Job) -> Json:
    return RUNNERS[job[0]](*job[1:])


def _keyed_job(job: Job) -> tuple[Job, Json]:
    return job, run_job(job)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _finished(result: Exploration) -> Exploration:
    """`result`, unless Ctrl-C cut it short: then the job is interrupted, not done."""
    if result.stop_reason is not None and "interrupted" in result.stop_reason:
        raise KeyboardInterrupt
    return result


def jobs_for(profiles: Sequence[Profile], scenarios: Sequence[str]) -> list[Job]:
    """Every job the site needs, the costliest first (they run in parallel): the
    endpoint exploration of every profile, the scenarios under `profiles`, and
    every variant's counterexample."""
    jobs: list[Job] = [("endpoint", p.value) for p in Profile]
    jobs += [("scenario", name, p.value) for p in profiles for name in scenarios]
    for prop in CATALOGUE:
        for expect in prop.violated_by:
            job = ("counterexample", prop.name, expect.variant.value, expect.scenario)
            jobs.append((*job, expect.profile.value))
    return sorted(jobs, key=lambda job: -_cost(job))


COST = {"lifecycle": 9, "half-close": 5, "reconnect": 4, "simultaneous-close": 3}
"""Rough relative exploration cost of the big scenarios: they start first."""


def _cost(job: Job) -> int:
    if job[0] == "scenario":
        return COST.get(job[1], 0)
    if job[0] == "counterexample":
        # Found breadth-first, so the cost is the depth: reuse's is deep (15 s here).
        return 10 if job[3] == "reuse" else COST.get(job[3], 0) // 2
    return 0


# ----------------------------------------------------------------- cache


class Results:
    """Run jobs through a cache directory (None: no cache) and a process pool."""

    def __init__(self, cache: Path | None, workers: int | None = None) -> None:
        self.cache = cache
        self.workers = workers or os.cpu_count() or 1
        self.fingerprint = source_fingerprint()
        self.computed = 0
        self.cached = 0

    def _path(self, job: Job) -> Path | None:
        if self.cache is None:
            return None
        key = hashlib.blake2b(
            (self.fingerprint + "\0" + "\0".join(job)).encode(), digest_size=16
        ).hexdigest()
        return self.cache / f"{job[0]}-{key}.json"

    def _load(self, job: Job) -> Json | None:
        path = self._path(job)
        if path is None or not path.exists():
            return None
        try:
            data: Json = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # a damaged entry is computed again
        return data

    def store(self, job: Job, data: Json) -> None:
        path = self._path(job)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache only costs time

    def run(
        self, jobs: Sequence[Job], done: Callable[[Job, bool], None] | None = None
    ) -> dict[Job, Json]:
        """Every job's result; `done(job, was_cached)` after each one."""
        results: dict[Job, Json] = {}
        missing = []
        for job in jobs:
            data = self._load(job)
            if data is None:
                missing.append(job)
            else:
                results[job] = data
                self.cached += 1
                if done is not None:
                    done(job, True)
        if len(missing) <= 1 or self.workers <= 1:
            for job in missing:
                results[job] = self._finish(job, run_job(job), done)
            return results
        # Workers ignore Ctrl-C; the parent stops them all at once (terminate),
        # so an interrupted run caches nothing partial.
        # SIGINT stays blocked while the workers fork, so that none is born between
        # fork and its initializer with the parent's handler (a traceback per worker).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pool = multiprocessing.get_context("fork").Pool(
                min(self.workers, len(missing)), initializer=_ignore_sigint
            )
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for job, data in pool.imap_unordered(_keyed_job, missing):
                results[job] = self._finish(job, data, done)
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.close()
            pool.join()
        return results

    def _finish(self, job: Job, data: Json, done: Callable[[Job, bool], None] | None) -> Json:
        self.store(job, data)
        self.computed += 1
        if done is not None:
            done(job, False)
        return data
