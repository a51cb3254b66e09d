"""Alerts: thresholds with levels, judged on the newest build against a baseline.

The baseline of a step is the median and the MAD (median absolute deviation) of its
duration over the last ``baseline`` successful builds before the one judged: one odd
build in the baseline moves neither, so noise does not page anyone. A step regresses only
when it is slower than its median by more than ``step_ratio`` *and* ``step_min_s`` *and*
``step_mads`` scaled MADs.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from history.errors import NoBuildSelected
from history.options import LEVELS, AlertOptions, BuildSelection
from history.rows import AlertRow
from history.stats import mad, median, percentile
from history.store import BuildRow, HistoryStore

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


def describe(select: BuildSelection) -> str:
    """The selection as the options that made it: ``--branch main --label job=linux``."""
    parts = [f"--command {shlex.quote(select.command)}"] if select.command is not None else []
    parts += [f"--label {shlex.quote(f'{k}={v}')}" for k, v in select.labels]
    parts += [f"--branch {shlex.quote(select.branch)}"] if select.branch is not None else []
    return " ".join(parts)


def at_least(level: str, floor: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(floor)


def success_rate_alerts(window: Sequence[BuildRow], opts: AlertOptions) -> list[Alert]:
    if len(window) < opts.min_baseline:
        return []
    rate = sum(b.status == "succeeded" for b in window) / len(window)
    for level, limit in (
        ("critical", opts.success_rate_critical),
        ("warning", opts.success_rate_warning),
    ):
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
    window: Sequence[BuildRow], baseline: Sequence[BuildRow], opts: AlertOptions
) -> list[Alert]:
    least = opts.min_baseline
    if len(window) < least or len(baseline) < least:
        return []
    now = percentile(sorted(b.duration_s for b in window), 95) or 0.0
    before = percentile(sorted(b.duration_s for b in baseline), 95) or 0.0
    ratio = opts.p95_ratio
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
    store: HistoryStore, newest: BuildRow, baseline: Sequence[BuildRow], opts: AlertOptions
) -> list[Alert]:
    if len(baseline) < opts.min_baseline:
        return []
    totals = store.step_seconds([newest.tape, *(b.tape for b in baseline)])
    out = []
    for key, seconds in sorted(totals[newest.tape].items()):
        history = [totals[b.tape][key] for b in baseline if key in totals[b.tape]]
        if len(history) < opts.min_baseline:
            continue
        mid = median(history) or 0.0
        spread = mad(history) * _MAD_TO_SIGMA
        slower = seconds - mid
        if (
            seconds > mid * opts.step_ratio
            and slower > opts.step_min_s
            and slower > opts.step_mads * spread
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
    return [
        Alert("critical", "secret_in_output", w.path or w.kind, w.message, newest.tape)
        for w in store.secret_warnings(newest.tape)
    ]


def metric_alerts(store: HistoryStore, newest: BuildRow, opts: AlertOptions) -> list[Alert]:
    out = []
    values = store.metric_values(newest.tape)
    for rule in opts.metric_rules:
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


def evaluate(
    store: HistoryStore, opts: AlertOptions, select: BuildSelection | None = None
) -> list[Alert]:
    """The alerts of the newest build that ``select`` selects, most severe first, judged
    against the selected builds before it. Interrupted builds are neither judged nor
    part of any window or baseline."""
    selected = store.build_rows(None, select)
    if not selected and select is not None and not select.everything:
        raise NoBuildSelected(
            f"no build of the history at {store.path} is selected by {describe(select)}; "
            "`buildtape history` lists the builds (check the spelling)"
        )
    builds = [b for b in selected if b.status != "interrupted"]
    if not builds:
        return []
    newest = builds[-1]
    window = builds[-opts.window :]
    earlier = builds[: -len(window)]
    baseline = [b for b in earlier if b.status == "succeeded"][-opts.baseline :]
    step_baseline = [b for b in builds[:-1] if b.status == "succeeded"][-opts.baseline :]
    found = (
        success_rate_alerts(window, opts)
        + p95_alerts(window, baseline, opts)
        + step_alerts(store, newest, step_baseline, opts)
        + secret_alerts(store, newest)
        + metric_alerts(store, newest, opts)
    )
    return sorted(found, key=lambda a: (-LEVELS.index(a.level), a.rule, a.subject))


def judge(
    store: HistoryStore, opts: AlertOptions, select: BuildSelection | None = None
) -> list[Alert]:
    """``evaluate``, and keep what it found in the history."""
    found = evaluate(store, opts, select)
    remember(store, found)
    return found


def remember(store: HistoryStore, alerts: Sequence[Alert]) -> None:
    """Keep alerts in the history; one raised again for the same build is kept once."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    store.remember_alerts(
        [AlertRow(now, a.tape, a.level, a.rule, a.subject, a.message) for a in alerts]
    )


def past(store: HistoryStore, since: str | None = None, level: str = "info") -> list[AlertRow]:
    """Alerts raised so far at or above ``level``, newest first."""
    return [r for r in store.past_alerts(since) if at_least(r.level, level)]


def as_json(alerts: Sequence[Alert]) -> str:
    return json.dumps([a.to_json() for a in alerts], indent=2, sort_keys=True)
