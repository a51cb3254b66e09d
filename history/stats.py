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
from datetime import datetime, timedelta, timezone
from typing import Any

from history.options import StatsOptions
from history.store import BuildRow, HistoryStore, Outcome

PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


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


def summarise(builds: Sequence[Outcome]) -> dict[str, Any]:
    """Counts, rates and duration percentiles of a set of builds."""
    n = len(builds)
    succeeded = sum(b[1] == "succeeded" for b in builds)
    failed = sum(b[1] == "failed" for b in builds)
    durations = sorted(b[2] for b in builds)
    busy = [b[3] for b in builds]
    return {
        "builds": n,
        "succeeded": succeeded,
        "failed": failed,
        "interrupted": n - succeeded - failed,
        "success_rate": _r(succeeded / n if n else None),
        "failure_rate": _r(failed / n if n else None),
        "duration_s": {
            "avg": _r(sum(durations) / n if n else None),
            "min": _r(durations[0] if n else None),
            "p50": _r(percentile(durations, 50)),
            "p95": _r(percentile(durations, 95)),
            "p99": _r(percentile(durations, 99)),
            "max": _r(durations[-1] if n else None),
        },
        "busy_s": {"avg": _r(sum(busy) / n if n else None), "total": _r(sum(busy))},
    }


def failures(store: HistoryStore, since: str | None) -> list[dict[str, Any]]:
    return [
        {
            "step": r[0],
            "exit_code": r[1],
            "signal": r[2],
            "count": r[3],
            "builds": r[4],
            "last_seen": r[5],
            "example_error": r[6],
            "example_tape": r[7],
        }
        for r in store.failure_groups(since)
    ]


def slowest_steps(store: HistoryStore, since: str | None, n: int = 10) -> list[dict[str, Any]]:
    return [
        {
            "step": key,
            "runs": runs,
            "avg_s": _r(avg),
            "p50_s": _r(p50),
            "p95_s": _r(p95),
            "max_s": _r(worst),
            "total_s": _r(total),
        }
        for key, runs, avg, p50, p95, worst, total in store.slowest_steps(since, n)
    ]


def metric_stats(store: HistoryStore, since: str | None) -> list[dict[str, Any]]:
    return [
        {
            "name": r[0],
            "unit": r[1],
            "count": r[2],
            "mean": _r(r[3]),
            "sum": _r(r[4]),
            "min": r[5],
            "max": r[6],
        }
        for r in store.metric_summaries(since)
    ]


def trend(builds: Sequence[Outcome]) -> list[dict[str, Any]]:
    days: dict[str, list[Outcome]] = {}
    for b in builds:
        days.setdefault(b[0][:10], []).append(b)
    out = []
    for day in sorted(days):
        s = summarise(days[day])
        out.append(
            {
                "day": day,
                "builds": s["builds"],
                "failed": s["failed"],
                "success_rate": s["success_rate"],
                "p50_s": s["duration_s"]["p50"],
                "p95_s": s["duration_s"]["p95"],
            }
        )
    return out


def group_key(b: BuildRow, by: str) -> str:
    if by == "command":
        return shlex.join(b.command)
    if by.startswith("label:"):
        return b.labels.get(by[6:], "(none)")
    return ",".join(f"{k}={v}" for k, v in sorted(b.labels.items())) or "(no labels)"


def stats(store: HistoryStore, options: StatsOptions) -> dict[str, Any]:
    since = period_start(options.period)
    builds = store.outcomes(since)
    out: dict[str, Any] = {"period": options.period, "since": since, "history": str(store.path)}
    out.update(summarise(builds))
    out["failures"] = failures(store, since)
    out["slowest_steps"] = slowest_steps(store, since, options.slowest)
    out["trend"] = trend(builds)
    out["metrics"] = metric_stats(store, since)
    if options.by:
        groups: dict[str, list[Outcome]] = {}
        for b in store.build_rows(since):
            groups.setdefault(group_key(b, options.by), []).append(
                (b.started_at, b.status, b.duration_s, b.busy_s)
            )
        out["by"] = options.by
        out["groups"] = [{"group": g, **summarise(groups[g])} for g in sorted(groups)]
    return out
