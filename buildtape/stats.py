"""``buildtape stats``: what the history says about a period — rates, percentiles, failures
grouped by step, the slowest steps across builds, a per-day trend and custom metrics.

Aggregation over steps, failures and metrics runs in SQLite; only the builds of the period
(one row each) come back to Python, so 10k builds answer in well under a second.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from buildtape.history_store import HistoryStore

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


@dataclass(frozen=True)
class BuildRow:
    tape: str
    started_at: str
    status: str
    exit_code: int | None
    duration_s: float
    busy_s: float
    command: list[str]
    labels: dict[str, str]


def build_rows(store: HistoryStore, since: str | None) -> list[BuildRow]:
    sql = (
        "SELECT tape, started_at, status, exit_code, duration_s, busy_s, command, labels"
        " FROM builds"
    )
    args: list[Any] = []
    if since:
        sql += " WHERE started_at >= ?"
        args.append(since)
    sql += " ORDER BY started_at, tape"
    return [
        BuildRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]))
        for r in store.db.execute(sql, args)
    ]


def summarise(builds: Sequence[BuildRow]) -> dict[str, Any]:
    """Counts, rates and duration percentiles of a set of builds."""
    n = len(builds)
    succeeded = sum(b.status == "succeeded" for b in builds)
    failed = sum(b.status == "failed" for b in builds)
    durations = sorted(b.duration_s for b in builds)
    busy = [b.busy_s for b in builds]
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


def _window(since: str | None) -> tuple[str, list[Any]]:
    return ("b.started_at >= ?", [since]) if since else ("1", [])


def failures(store: HistoryStore, since: str | None) -> list[dict[str, Any]]:
    where, args = _window(since)
    # SQLite returns the bare columns of the row where max() was found: the newest example.
    rows = store.db.execute(
        "SELECT f.key, f.exit_code, f.signal, count(*), count(DISTINCT f.tape),"
        " max(b.started_at), f.error_line, f.tape FROM failures f"
        f" JOIN builds b ON b.tape = f.tape WHERE {where}"
        " GROUP BY f.key, f.exit_code, f.signal ORDER BY count(*) DESC, f.key",
        args,
    )
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
        for r in rows
    ]


def slowest_steps(store: HistoryStore, since: str | None, n: int = 10) -> list[dict[str, Any]]:
    where, args = _window(since)
    top = store.db.execute(
        "SELECT s.key, count(*), avg(s.duration_s), max(s.duration_s), sum(s.duration_s)"
        f" FROM steps s JOIN builds b ON b.tape = s.tape WHERE {where}"
        " AND s.duration_s IS NOT NULL GROUP BY s.key"
        " ORDER BY avg(s.duration_s) DESC, s.key LIMIT ?",
        [*args, n],
    ).fetchall()
    out = []
    for key, count, avg, worst, total in top:
        durations = sorted(
            r[0]
            for r in store.db.execute(
                "SELECT s.duration_s FROM steps s JOIN builds b ON b.tape = s.tape"
                f" WHERE s.key = ? AND {where} AND s.duration_s IS NOT NULL",
                [key, *args],
            )
        )
        out.append(
            {
                "step": key,
                "runs": count,
                "avg_s": _r(avg),
                "p50_s": _r(percentile(durations, 50)),
                "p95_s": _r(percentile(durations, 95)),
                "max_s": _r(worst),
                "total_s": _r(total),
            }
        )
    return out


def metric_stats(store: HistoryStore, since: str | None) -> list[dict[str, Any]]:
    where, args = _window(since)
    rows = store.db.execute(
        "SELECT m.name, m.unit, count(*), avg(m.value), sum(m.value), min(m.value),"
        f" max(m.value), count(DISTINCT m.tape) FROM metrics m JOIN builds b ON b.tape = m.tape"
        f" WHERE {where} GROUP BY m.name, m.unit ORDER BY m.name, m.unit",
        args,
    )
    return [
        {
            "name": r[0],
            "unit": r[1],
            "count": r[2],
            "mean": _r(r[3]),
            "sum": _r(r[4]),
            "min": r[5],
            "max": r[6],
            "builds": r[7],
        }
        for r in rows
    ]


def trend(builds: Sequence[BuildRow]) -> list[dict[str, Any]]:
    days: dict[str, list[BuildRow]] = {}
    for b in builds:
        days.setdefault(b.started_at[:10], []).append(b)
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


def stats(store: HistoryStore, period: str = "all", by: str | None = None) -> dict[str, Any]:
    since = period_start(period)
    builds = build_rows(store, since)
    out: dict[str, Any] = {"period": period, "since": since, "history": str(store.path)}
    out.update(summarise(builds))
    out["failures"] = failures(store, since)
    out["slowest_steps"] = slowest_steps(store, since)
    out["trend"] = trend(builds)
    out["metrics"] = metric_stats(store, since)
    if by:
        groups: dict[str, list[BuildRow]] = {}
        for b in builds:
            groups.setdefault(group_key(b, by), []).append(b)
        out["by"] = by
        out["groups"] = [{"group": g, **summarise(groups[g])} for g in sorted(groups)]
    return out
