"""The history for people: ``history``, ``stats``, ``alerts``, ``check``, ``events`` and
``gc``.

Commands, labels, step names, errors and alert messages come from tapes (someone else's,
maybe): each is written through ``printable``, so no control character reaches a terminal
and no newline inside one forges a row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildtape.text.units import human_size, percent, seconds, short_argv
from recorder.trust import printable

if TYPE_CHECKING:
    from history.alerts import Alert
    from history.retention import Plan
    from history.rows import AlertRow
    from history.stats import Stats
    from history.store import Build


def _shown_path(tape: str) -> str:
    """A tape's path relative to the current directory when it is under it."""
    path = Path(tape)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return tape


def builds(found: list[Build]) -> str:
    """Recordings, newest first: the ID that names them (``#ID``), when, status, exit,
    duration, processes, tape and command."""
    paths = [printable(_shown_path(b.tape)) for b in found]
    ids = [f"#{b.id}" for b in found]
    iw = max(len("ID"), *map(len, ids))
    tw = max(len("TAPE"), *map(len, paths))
    lines = [
        f"{'ID':<{iw}} {'STARTED':<24} {'STATUS':<11} {'EXIT':>4} {'DURATION':>9} {'PROCS':>5}  "
        f"{'TAPE':<{tw}}  COMMAND"
    ]
    for b, shown_id, path in zip(found, ids, paths, strict=True):
        exit_text = "-" if b.exit_code is None else str(b.exit_code)
        label_text = printable(" ".join(f"{k}={v}" for k, v in sorted(b.labels.items())))
        missing = "  (tape missing)" if not b.present else ""
        label_part = f"  [{label_text}]" if label_text else ""
        lines.append(
            f"{shown_id:<{iw}} {printable(b.started_at):<24} {printable(b.status):<11} "
            f"{exit_text:>4} {seconds(b.duration_s):>9} {b.processes:>5}  {path:<{tw}}  "
            f"{printable(short_argv(b.command, 60))}{label_part}{missing}"
        )
    return "\n".join(lines) + "\n"


def _selected(s: Stats) -> str:
    sel = s.select
    parts = [f"command {sel.command}"] if sel.command is not None else []
    parts += [f"label {k}={v}" for k, v in sel.labels]
    parts += [f"branch {sel.branch}"] if sel.branch is not None else []
    return f"; only builds with {', '.join(parts)}" if parts else ""


def stats(s: Stats) -> str:
    """The figures of ``buildtape stats``, as tables."""
    d, busy = s.summary.duration_s, s.summary.busy_s
    lines = [
        (
            f"builds since {s.since}"
            if s.period == "since"
            else f"period: {s.period}" + (f" (since {s.since})" if s.since else "")
        )
        + _selected(s),
        f"builds: {s.summary.builds}  succeeded: {s.summary.succeeded}  "
        f"failed: {s.summary.failed}  interrupted: {s.summary.interrupted}  "
        f"success rate: {percent(s.summary.success_rate)}"
        + (" (interrupted builds not counted)" if s.summary.interrupted else ""),
        f"duration: avg {seconds(d.avg)}  p50 {seconds(d.p50)}  "
        f"p95 {seconds(d.p95)}  p99 {seconds(d.p99)}  max {seconds(d.max)}",
        f"busy process time: avg {seconds(busy.avg)} per build, total {seconds(busy.total)}",
    ]
    if s.failures:
        lines += ["", "failures (by step and exit code):"]
        for f in s.failures:
            code = f"signal {f.signal}" if f.signal else f"exit {f.exit_code}"
            lines.append(f"  {f.count:>4}x  {code:<10} {printable(f.step)}")
            if f.example_error:
                lines.append(f"         e.g. {printable(f.example_error)}")
    if s.slowest_steps:
        lines += ["", f"{'slowest steps':<56} {'RUNS':>5} {'AVG':>8} {'P95':>8} {'MAX':>8}"]
        for st in s.slowest_steps:
            step = printable(st.step)
            step = step if len(step) <= 56 else step[:53] + "..."
            lines.append(
                f"{step:<56} {st.runs:>5} {seconds(st.avg_s):>8} "
                f"{seconds(st.p95_s):>8} {seconds(st.max_s):>8}"
            )
    if s.trend:
        lines += [
            "",
            f"{'day':<12} {'BUILDS':>6} {'FAILED':>6} {'SUCCESS':>8} {'P50':>8} {'P95':>8}",
        ]
        for t in s.trend:
            lines.append(
                f"{t.day:<12} {t.builds:>6} {t.failed:>6} {percent(t.success_rate):>8} "
                f"{seconds(t.p50_s):>8} {seconds(t.p95_s):>8}"
            )
    if s.metrics:
        lines += [
            "",
            f"{'metric':<28} {'COUNT':>6} {'MEAN':>12} {'MIN':>12} {'MAX':>12} {'SUM':>12}",
        ]
        for m in s.metrics:
            name = printable(m.name + (f" ({m.unit})" if m.unit else ""))
            lines.append(
                f"{name:<28} {m.count:>6} {m.mean:>12g} {m.min:>12g} {m.max:>12g} {m.sum:>12g}"
            )
    if s.groups and s.by:
        lines += ["", f"{'by ' + s.by:<32} {'BUILDS':>6} {'SUCCESS':>8} {'P50':>8} {'P95':>8}"]
        for g in s.groups:
            lines.append(
                f"{printable(g.group)[:32]:<32} {g.summary.builds:>6} "
                f"{percent(g.summary.success_rate):>8} "
                f"{seconds(g.summary.duration_s.p50):>8} {seconds(g.summary.duration_s.p95):>8}"
            )
    return "\n".join(lines)


def alert(a: Alert) -> str:
    return f"{a.level.upper():<8} {a.rule:<16} {printable(a.message)}"


def raised(r: AlertRow) -> str:
    """An alert of the history, with when it was raised."""
    return f"{r.raised_at}  {r.level.upper():<8} {r.rule:<16} {printable(r.message)}"


def event(e: dict[str, Any]) -> str:
    """One event row: when, kind, name and the rest of its data as JSON."""
    name = e.get("name") or ""
    rest = {k: v for k, v in e.items() if k not in ("tape", "started_at", "t", "kind", "name")}
    detail = json.dumps(rest, sort_keys=True) if rest else ""
    return f"{e['started_at']} +{e['t']:>9.3f}s {e['kind']:<18} {name:<20} {detail}"


def retention(p: Plan, dry_run: bool) -> str:
    """What ``gc`` deleted (or would), and what it kept."""
    verb = "would delete" if dry_run else "deleted"
    lines = [f"{verb} {printable(tape)}" for tape in p.delete]
    lines += [f"left alone (being written): {printable(tape)}" for tape in p.busy]
    forgets = "would forget" if dry_run else "forgot"
    lines += [
        f"{forgets} (file kept, outside the tapes directory): {printable(t)}" for t in p.forget
    ]
    lines.append(
        f"{verb} {len(p.delete)} tape(s), {human_size(p.freed_bytes)}; kept "
        f"{len(p.keep)} ({human_size(p.kept_bytes)}); {len(p.missing)} already missing "
        f"dropped from the index; {len(p.stale_partials)} stale partial file(s)"
        + (" removed" if not dry_run else "")
    )
    return "\n".join(lines) + "\n"
