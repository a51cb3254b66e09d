"""``buildtape stats``: the history of a period, for people (tables) or machines (--json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from buildtape.config import load_here
from buildtape.history_store import HistoryStore
from buildtape.stats import stats


def home_option(fn: Any) -> Any:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        help="History directory. Default: $BUILDTAPE_HOME, config `home`, else .buildtape "
        "in the workspace.",
    )(fn)


def _seconds(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}s"


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render(s: dict[str, Any]) -> str:
    d = s["duration_s"]
    lines = [
        f"period: {s['period']}" + (f" (since {s['since']})" if s["since"] else ""),
        f"builds: {s['builds']}  succeeded: {s['succeeded']}  failed: {s['failed']}  "
        f"interrupted: {s['interrupted']}  success rate: {_percent(s['success_rate'])}",
        f"duration: avg {_seconds(d['avg'])}  p50 {_seconds(d['p50'])}  "
        f"p95 {_seconds(d['p95'])}  p99 {_seconds(d['p99'])}  max {_seconds(d['max'])}",
        f"busy process time: avg {_seconds(s['busy_s']['avg'])} per build, "
        f"total {_seconds(s['busy_s']['total'])}",
    ]
    if s["failures"]:
        lines += ["", "failures (by step and exit code):"]
        for f in s["failures"]:
            code = f"signal {f['signal']}" if f["signal"] else f"exit {f['exit_code']}"
            lines.append(f"  {f['count']:>4}x  {code:<10} {f['step']}")
            if f["example_error"]:
                lines.append(f"         e.g. {f['example_error']}")
    if s["slowest_steps"]:
        lines += ["", f"{'slowest steps':<56} {'RUNS':>5} {'AVG':>8} {'P95':>8} {'MAX':>8}"]
        for st in s["slowest_steps"]:
            step = st["step"] if len(st["step"]) <= 56 else st["step"][:53] + "..."
            lines.append(
                f"{step:<56} {st['runs']:>5} {_seconds(st['avg_s']):>8} "
                f"{_seconds(st['p95_s']):>8} {_seconds(st['max_s']):>8}"
            )
    if s["trend"]:
        lines += [
            "",
            f"{'day':<12} {'BUILDS':>6} {'FAILED':>6} {'SUCCESS':>8} {'P50':>8} {'P95':>8}",
        ]
        for t in s["trend"]:
            lines.append(
                f"{t['day']:<12} {t['builds']:>6} {t['failed']:>6} "
                f"{_percent(t['success_rate']):>8} {_seconds(t['p50_s']):>8} "
                f"{_seconds(t['p95_s']):>8}"
            )
    if s["metrics"]:
        lines += [
            "",
            f"{'metric':<28} {'COUNT':>6} {'MEAN':>12} {'MIN':>12} {'MAX':>12} {'SUM':>12}",
        ]
        for m in s["metrics"]:
            name = m["name"] + (f" ({m['unit']})" if m["unit"] else "")
            lines.append(
                f"{name:<28} {m['count']:>6} {m['mean']:>12g} {m['min']:>12g} "
                f"{m['max']:>12g} {m['sum']:>12g}"
            )
    if s.get("groups"):
        lines += ["", f"{'by ' + s['by']:<32} {'BUILDS':>6} {'SUCCESS':>8} {'P50':>8} {'P95':>8}"]
        for g in s["groups"]:
            lines.append(
                f"{g['group'][:32]:<32} {g['builds']:>6} {_percent(g['success_rate']):>8} "
                f"{_seconds(g['duration_s']['p50']):>8} {_seconds(g['duration_s']['p95']):>8}"
            )
    return "\n".join(lines)


def _by(value: str | None) -> str | None:
    if value is None or value in ("label", "command") or value.startswith("label:"):
        return value
    raise click.BadParameter("use label, label:KEY or command", param_hint="--by")


@click.command("stats")
@click.option(
    "--period",
    type=click.Choice(["hour", "day", "week", "all"]),
    default="all",
    show_default=True,
    help="Only builds started in the last hour, day or week.",
)
@click.option(
    "--by",
    metavar="label|label:KEY|command",
    help="Also break the build figures down by label set, one label's value, or command.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (documented in docs).")
@home_option
def stats_cmd(period: str, by: str | None, as_json: bool, home: Path | None) -> None:
    """Success rate, duration percentiles, failures, slowest steps, trend and metrics.

    \b
    Percentiles interpolate between the nearest ranks. Steps are matched across builds
    by their normalised command line (workspace path, temp names and pids rewritten).
    Failures are grouped by failing step and exit code, with the newest error line.

    \b
    Examples:
      buildtape stats
      buildtape stats --period week --by label:branch --json
    """
    by = _by(by)
    with HistoryStore(home or load_here().home, create=False) as store:
        result = stats(store, period, by)
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        click.echo(render(result))
