"""Alerts: thresholds with levels, judged on the newest build against a baseline.

The baseline of a step is the median and the MAD (median absolute deviation) of its
duration over the last ``alerts.baseline`` successful builds before the one judged: one
odd build in the baseline moves neither, so noise does not page anyone. A step regresses
only when it is slower than its median by more than ``step_ratio`` *and* ``step_min_s``
*and* ``step_mads`` scaled MADs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from buildtape.config import LEVELS, Config
from buildtape.history_store import HistoryStore
from buildtape.stats import BuildRow, build_rows, mad, median, percentile

# MAD * 1.4826 estimates the standard deviation of normally distributed noise.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Alert:
    level: str
    rule: str
    subject: str
    message: str
    tape: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def at_least(level: str, floor: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(floor)


def _step_totals(store: HistoryStore, tapes: Sequence[str]) -> dict[str, dict[str, float]]:
    """tape -> step key -> total seconds of that step in that build."""
    out: dict[str, dict[str, float]] = {t: {} for t in tapes}
    if not tapes:
        return out
    marks = ",".join("?" * len(tapes))
    for tape, key, total in store.db.execute(
        f"SELECT tape, key, sum(duration_s) FROM steps WHERE tape IN ({marks})"
        " AND duration_s IS NOT NULL GROUP BY tape, key",
        list(tapes),
    ):
        out[tape][key] = total
    return out


def success_rate_alerts(window: Sequence[BuildRow], cfg: Config) -> list[Alert]:
    if len(window) < cfg.get("alerts.min_baseline"):
        return []
    rate = sum(b.status == "succeeded" for b in window) / len(window)
    for level, key in (("critical", "success_rate_critical"), ("warning", "success_rate_warning")):
        limit = cfg.get(f"alerts.{key}")
        if rate < limit:
            return [
                Alert(
                    level,
                    "success_rate",
                    "builds",
                    f"success rate {100 * rate:.0f}% over the last {len(window)} builds "
                    f"is below {100 * limit:.0f}%",
                    window[-1].tape,
                )
            ]
    return []


def p95_alerts(
    window: Sequence[BuildRow], baseline: Sequence[BuildRow], cfg: Config
) -> list[Alert]:
    least = cfg.get("alerts.min_baseline")
    if len(window) < least or len(baseline) < least:
        return []
    now = percentile(sorted(b.duration_s for b in window), 95) or 0.0
    before = percentile(sorted(b.duration_s for b in baseline), 95) or 0.0
    ratio = cfg.get("alerts.p95_ratio")
    if before > 0 and now > ratio * before:
        return [
            Alert(
                "error",
                "p95_duration",
                "builds",
                f"p95 build duration {now:.2f}s over the last {len(window)} builds is "
                f"{now / before:.2f}x its baseline {before:.2f}s (limit {ratio}x)",
                window[-1].tape,
            )
        ]
    return []


def step_alerts(
    store: HistoryStore, newest: BuildRow, baseline: Sequence[BuildRow], cfg: Config
) -> list[Alert]:
    if len(baseline) < cfg.get("alerts.min_baseline"):
        return []
    totals = _step_totals(store, [newest.tape, *(b.tape for b in baseline)])
    out = []
    for key, seconds in sorted(totals[newest.tape].items()):
        history = [totals[b.tape][key] for b in baseline if key in totals[b.tape]]
        if len(history) < cfg.get("alerts.min_baseline"):
            continue
        mid = median(history) or 0.0
        spread = mad(history) * _MAD_TO_SIGMA
        slower = seconds - mid
        if (
            seconds > mid * cfg.get("alerts.step_ratio")
            and slower > cfg.get("alerts.step_min_s")
            and slower > cfg.get("alerts.step_mads") * spread
        ):
            out.append(
                Alert(
                    "warning",
                    "step_regression",
                    key,
                    f"step {key} took {seconds:.2f}s, {slower:.2f}s "
                    f"({100 * slower / mid if mid else 0:.0f}%) over its baseline median "
                    f"{mid:.2f}s of {len(history)} builds",
                    newest.tape,
                )
            )
    return out


def secret_alerts(store: HistoryStore, newest: BuildRow) -> list[Alert]:
    rows = store.db.execute(
        "SELECT kind, message, path FROM warnings WHERE tape = ? AND kind LIKE 'secret_in_%'"
        " ORDER BY path",
        (newest.tape,),
    )
    return [
        Alert("critical", "secret_in_output", path or kind, msg, newest.tape)
        for kind, msg, path in rows
    ]


def metric_alerts(store: HistoryStore, newest: BuildRow, cfg: Config) -> list[Alert]:
    out = []
    values: dict[str, list[float]] = {}
    for name, value in store.db.execute(
        "SELECT name, value FROM metrics WHERE tape = ?", (newest.tape,)
    ):
        values.setdefault(name, []).append(value)
    for rule in cfg.metric_rules:
        for value in values.get(rule.name, []):
            if rule.above is not None and value > rule.above:
                why = f"above {rule.above:g}"
            elif rule.below is not None and value < rule.below:
                why = f"below {rule.below:g}"
            else:
                continue
            out.append(
                Alert(
                    rule.level,
                    "metric",
                    rule.name,
                    f"metric {rule.name} = {value:g} is {why}",
                    newest.tape,
                )
            )
            break
    return out


def evaluate(store: HistoryStore, cfg: Config) -> list[Alert]:
    """The alerts of the newest build in the history, most severe first."""
    builds = build_rows(store, None)  # oldest first
    if not builds:
        return []
    newest = builds[-1]
    window = builds[-cfg.get("alerts.window") :]
    earlier = builds[: -len(window)]
    base_n = cfg.get("alerts.baseline")
    baseline = [b for b in earlier if b.status == "succeeded"][-base_n:]
    step_baseline = [b for b in builds[:-1] if b.status == "succeeded"][-base_n:]
    found = (
        success_rate_alerts(window, cfg)
        + p95_alerts(window, baseline, cfg)
        + step_alerts(store, newest, step_baseline, cfg)
        + secret_alerts(store, newest)
        + metric_alerts(store, newest, cfg)
    )
    return sorted(found, key=lambda a: (-LEVELS.index(a.level), a.rule, a.subject))


def remember(store: HistoryStore, alerts: Sequence[Alert]) -> None:
    """Keep alerts in the history; one raised again for the same build is kept once."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with store.transaction():
        store.db.executemany(
            "INSERT OR IGNORE INTO alerts VALUES (?,?,?,?,?,?)",
            [(now, a.tape, a.level, a.rule, a.subject, a.message) for a in alerts],
        )


def past(store: HistoryStore, since: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT raised_at, tape, level, rule, subject, message FROM alerts"
    args: list[Any] = []
    if since:
        sql += " WHERE raised_at >= ?"
        args.append(since)
    sql += " ORDER BY raised_at DESC, tape, rule, subject"
    cols = ("raised_at", "tape", "level", "rule", "subject", "message")
    return [dict(zip(cols, r, strict=True)) for r in store.db.execute(sql, args)]


def as_json(alerts: Sequence[Alert]) -> str:
    return json.dumps([a.to_json() for a in alerts], indent=2, sort_keys=True)
