"""Stats: what the history says about a period — rates, percentiles, failures grouped by
step, the slowest steps across builds, a per-day trend and custom metrics.

Aggregation over steps, failures and metrics runs in SQLite (``history.store``); only the
builds of the period (one row each) come back to Python, so 10k builds answer in well
under a second.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from history.options import BuildSelection, StatsOptions
from history.store import BuildRow, HistoryStore, Outcome

PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


@dataclass(frozen=True)
class Durations:
    """Build durations in seconds (None over no builds)."""

    avg: float | None
    min: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True)
class Busy:
    """Process time summed over each build's outermost steps, in seconds."""

    avg: float | None
    total: float | None


@dataclass(frozen=True)
class Summary:
    """Counts, rates and duration percentiles of a set of builds."""

    builds: int
    succeeded: int
    failed: int
    interrupted: int
    success_rate: float | None
    failure_rate: float | None
    duration_s: Durations
    busy_s: Busy

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FailureGroup:
    """Failures of one step with one exit code or signal, with the newest example."""

    step: str
    exit_code: int | None
    signal: str | None
    count: int
    builds: int
    last_seen: str
    example_error: str | None
    example_tape: str


@dataclass(frozen=True)
class SlowStep:
    step: str
    runs: int
    avg_s: float | None
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    total_s: float | None


@dataclass(frozen=True)
class MetricSummary:
    name: str
    unit: str | None
    count: int
    mean: float | None
    sum: float | None
    min: float
    max: float


@dataclass(frozen=True)
class Day:
    """One day of the trend."""

    day: str
    builds: int
    failed: int
    success_rate: float | None
    p50_s: float | None
    p95_s: float | None


@dataclass(frozen=True)
class Group:
    """The builds of one group of ``--by``."""

    group: str
    summary: Summary

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, **self.summary.to_json()}


@dataclass(frozen=True)
class Stats:
    """What ``stats`` found; ``to_json`` is the documented object of ``stats --json``."""

    period: str
    since: str | None
    history: str
    summary: Summary
    failures: list[FailureGroup]
    slowest_steps: list[SlowStep]
    trend: list[Day]
    metrics: list[MetricSummary]
    # With --by: how builds were grouped, and each group (by name).
    by: str | None = None
    groups: list[Group] | None = None
    # Which builds were counted (--command, --label, --branch).
    select: BuildSelection = field(default_factory=BuildSelection)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"period": self.period, "since": self.since, "history": self.history}
        out["select"] = {
            "command": self.select.command,
            "labels": dict(self.select.labels),
            "branch": self.select.branch,
        }
        out.update(self.summary.to_json())
        out["failures"] = [asdict(f) for f in self.failures]
        out["slowest_steps"] = [asdict(s) for s in self.slowest_steps]
        out["trend"] = [asdict(d) for d in self.trend]
        out["metrics"] = [asdict(m) for m in self.metrics]
        if self.by is not None and self.groups is not None:
            out["by"] = self.by
            out["groups"] = [g.to_json() for g in self.groups]
        return out


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of sorted values, interpolating linearly between the
    two nearest ranks (the definition of numpy's default and Excel's PERCENTILE.INC)."""
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float | None:
    return percentile(sorted(values), 50)


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation: a spread that one outlier cannot inflate."""
    mid = median(values)
    if mid is None:
        return 0.0
    return median([abs(v - mid) for v in values]) or 0.0


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def period_start(period: str, now: datetime | None = None) -> str | None:
    if period == "all":
        return None
    now = now or datetime.now(timezone.utc)
    start = now - PERIODS[period]
    return start.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def summarise(builds: Sequence[Outcome]) -> Summary:
    """Counts, rates and duration percentiles of a set of builds. Interrupted builds are
    counted, and only counted: rates and durations are those of the builds that ran to
    the end (an experiment stopped with ^C is neither a failure nor a duration)."""
    completed = [b for b in builds if b[1] != "interrupted"]
    n = len(completed)
    succeeded = sum(b[1] == "succeeded" for b in completed)
    failed = n - succeeded
    durations = sorted(b[2] for b in completed)
    busy = [b[3] for b in completed]
    return Summary(
        builds=len(builds),
        succeeded=succeeded,
        failed=failed,
        interrupted=len(builds) - n,
        success_rate=_r(succeeded / n if n else None),
        failure_rate=_r(failed / n if n else None),
        duration_s=Durations(
            avg=_r(sum(durations) / n if n else None),
            min=_r(durations[0] if n else None),
            p50=_r(percentile(durations, 50)),
            p95=_r(percentile(durations, 95)),
            p99=_r(percentile(durations, 99)),
            max=_r(durations[-1] if n else None),
        ),
        busy_s=Busy(avg=_r(sum(busy) / n if n else None), total=_r(sum(busy))),
    )


def failures(
    store: HistoryStore, since: str | None, select: BuildSelection | None = None
) -> list[FailureGroup]:
    return [FailureGroup(*r) for r in store.failure_groups(since, select)]


def slowest_steps(
    store: HistoryStore, since: str | None, n: int = 10, select: BuildSelection | None = None
) -> list[SlowStep]:
    return [
        SlowStep(key, runs, _r(avg), _r(p50), _r(p95), _r(worst), _r(total))
        for key, runs, avg, p50, p95, worst, total in store.slowest_steps(since, n, select)
    ]


def metric_stats(
    store: HistoryStore, since: str | None, select: BuildSelection | None = None
) -> list[MetricSummary]:
    return [
        MetricSummary(name, unit, count, _r(mean), _r(total), low, high)
        for name, unit, count, mean, total, low, high in store.metric_summaries(since, select)
    ]


def trend(builds: Sequence[Outcome]) -> list[Day]:
    days: dict[str, list[Outcome]] = {}
    for b in builds:
        days.setdefault(b[0][:10], []).append(b)
    out = []
    for day in sorted(days):
        s = summarise(days[day])
        out.append(Day(day, s.builds, s.failed, s.success_rate, s.duration_s.p50, s.duration_s.p95))
    return out


def group_key(b: BuildRow, by: str) -> str:
    if by == "command":
        return shlex.join(b.command)
    if by == "branch":
        return b.branch or "(no branch)"
    if by.startswith("label:"):
        return b.labels.get(by[6:], "(none)")
    return ",".join(f"{k}={v}" for k, v in sorted(b.labels.items())) or "(no labels)"


def stats(store: HistoryStore, options: StatsOptions) -> Stats:
    since = options.since or period_start(options.period)
    select = options.select
    builds = store.outcomes(since, select)
    groups = None
    if options.by:
        grouped: dict[str, list[Outcome]] = {}
        for b in store.build_rows(since, select):
            grouped.setdefault(group_key(b, options.by), []).append(
                (b.started_at, b.status, b.duration_s, b.busy_s)
            )
        groups = [Group(g, summarise(grouped[g])) for g in sorted(grouped)]
    return Stats(
        period="since" if options.since else options.period,
        since=since,
        history=str(store.path),
        summary=summarise(builds),
        failures=failures(store, since, select),
        slowest_steps=slowest_steps(store, since, options.slowest, select),
        trend=trend(builds),
        metrics=metric_stats(store, since, select),
        by=options.by,
        groups=groups,
        select=select,
    )
