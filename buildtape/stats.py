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


# Not frozen: a frozen dataclass's __init__ costs 3x, and 10k of them are made per query.
@dataclass(slots=True)
class BuildRow:
    tape: str
    started_at: str
    status: str
    exit_code: int | None
    duration_s: float
    busy_s: float
    # Kept as JSON text: decoding 10k of them costs more than the rest of `stats`.
    command_json: str
    labels_json: str

    @property
    def command(self) -> list[str]:
        out: list[str] = json.loads(self.command_json)
        return out

    @property
    def labels(self) -> dict[str, str]:
        out: dict[str, str] = json.loads(self.labels_json)
        return out


def build_rows(store: HistoryStore, since: str | None) -> list[BuildRow]:
    """Builds, oldest first."""
    sql = (
        "SELECT tape, started_at, status, exit_code, duration_s, busy_s, command, labels"
        " FROM builds"
    )
    args: list[Any] = []
    if since:
        sql += " WHERE started_at >= ?"
        args.append(since)
    sql += " ORDER BY started_at, tape"
    return [BuildRow(*r) for r in store.db.execute(sql, args)]


# (started_at, status, duration_s, busy_s): all that the figures of a set of builds need,
# straight from SQLite as tuples (making 10k objects would cost more than the query).
Outcome = tuple[str, str, float, float]


def outcomes(store: HistoryStore, since: str | None) -> list[Outcome]:
    sql = "SELECT started_at, status, duration_s, busy_s FROM builds"
    args: list[Any] = []
    if since:
        sql += " WHERE started_at >= ?"
        args.append(since)
    return store.db.execute(sql + " ORDER BY started_at, tape", args).fetchall()


def outcome(b: BuildRow) -> Outcome:
    return (b.started_at, b.status, b.duration_s, b.busy_s)


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


def _window(since: str | None, table: str) -> tuple[str, str, list[Any]]:
    """FROM and WHERE for rows of ``table`` (aliased x) of builds since ``since``; over the
    whole history there is nothing to join."""
    if since is None:
        return f"{table} x", "1", []
    return f"{table} x JOIN builds b ON b.tape = x.tape", "b.started_at >= ?", [since]


def failures(store: HistoryStore, since: str | None) -> list[dict[str, Any]]:
    # SQLite returns the bare columns of the row where max() was found: the newest example.
    rows = store.db.execute(
        "SELECT f.key, f.exit_code, f.signal, count(*), count(DISTINCT f.tape),"
        " max(b.started_at), f.error_line, f.tape FROM failures f"
        " JOIN builds b ON b.tape = f.tape WHERE b.started_at >= ?"
        " GROUP BY f.key, f.exit_code, f.signal ORDER BY count(*) DESC, f.key",
        [since or ""],
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
    source, where, args = _window(since, "steps")
    if since is None:
        # The whole history: the running totals the store keeps per step.
        top = store.db.execute(
            "SELECT key, runs, total / runs, longest, total FROM step_totals"
            " ORDER BY total / runs DESC, key LIMIT ?",
            [n],
        ).fetchall()
    else:
        top = store.db.execute(
            "SELECT x.key, count(*), avg(x.duration_s), max(x.duration_s), sum(x.duration_s)"
            f" FROM {source} WHERE {where}"
            " AND x.duration_s IS NOT NULL GROUP BY x.key"
            " ORDER BY avg(x.duration_s) DESC, x.key LIMIT ?",
            [*args, n],
        ).fetchall()
    out = []
    for key, count, avg, worst, total in top:
        out.append(
            {
                "step": key,
                "runs": count,
                "avg_s": _r(avg),
                "p50_s": _r(_step_percentile(store, key, count, 50, source, where, args)),
                "p95_s": _r(_step_percentile(store, key, count, 95, source, where, args)),
                "max_s": _r(worst),
                "total_s": _r(total),
            }
        )
    return out


def _step_percentile(
    store: HistoryStore, key: str, count: int, q: float, source: str, where: str, args: list[Any]
) -> float | None:
    """``percentile`` of one step's durations, reading only the two ranks it needs: the
    index on (key, duration_s) hands them over already sorted."""
    pos = (count - 1) * q / 100.0
    lo = math.floor(pos)
    pair = [
        r[0]
        for r in store.db.execute(
            f"SELECT x.duration_s FROM {source} WHERE x.key = ? AND {where}"
            " AND x.duration_s IS NOT NULL ORDER BY x.duration_s LIMIT 2 OFFSET ?",
            [key, *args, lo],
        )
    ]
    if not pair:
        return None
    low: float = pair[0]
    high: float = pair[-1]
    return low + (high - low) * (pos - lo)


def metric_stats(store: HistoryStore, since: str | None) -> list[dict[str, Any]]:
    source, where, args = _window(since, "metrics")
    rows = store.db.execute(
        "SELECT x.name, x.unit, count(*), avg(x.value), sum(x.value), min(x.value),"
        f" max(x.value) FROM {source}"
        f" WHERE {where} GROUP BY x.name, x.unit ORDER BY x.name, x.unit",
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
        }
        for r in rows
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


def stats(store: HistoryStore, period: str = "all", by: str | None = None) -> dict[str, Any]:
    since = period_start(period)
    builds = outcomes(store, since)
    out: dict[str, Any] = {"period": period, "since": since, "history": str(store.path)}
    out.update(summarise(builds))
    out["failures"] = failures(store, since)
    out["slowest_steps"] = slowest_steps(store, since)
    out["trend"] = trend(builds)
    out["metrics"] = metric_stats(store, since)
    if by:
        groups: dict[str, list[Outcome]] = {}
        for b in build_rows(store, since):
            groups.setdefault(group_key(b, by), []).append(outcome(b))
        out["by"] = by
        out["groups"] = [{"group": g, **summarise(groups[g])} for g in sorted(groups)]
    return out
