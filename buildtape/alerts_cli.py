"""``buildtape alerts`` (what is wrong, and what was) and ``buildtape check`` (the CI gate)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from buildtape.alerts import Alert, as_json, at_least, evaluate, past, remember
from buildtape.config import LEVELS, load_here
from buildtape.exit_codes import ExitCode
from buildtape.history_store import HistoryStore, parse_since
from buildtape.stats_cli import home_option


def _line(a: Alert) -> str:
    return f"{a.level.upper():<8} {a.rule:<16} {a.message}"


def _judge(home: Path | None) -> tuple[list[Alert], Path]:
    cfg = load_here()
    with HistoryStore(home or cfg.home, create=False) as store:
        found = evaluate(store, cfg)
        remember(store, found)
        return found, store.path


@click.command("alerts")
@click.option(
    "--level",
    type=click.Choice(LEVELS),
    default="info",
    show_default=True,
    help="Only alerts at or above this level.",
)
@click.option("--history", "show_history", is_flag=True, help="Alerts raised so far, newest first.")
@click.option(
    "--since", metavar="WHEN", help="With --history: raised since 7d, 12h, or an ISO time."
)
@click.option("--json", "as_json_flag", is_flag=True, help="A JSON array.")
@home_option
def alerts_cmd(
    level: str, show_history: bool, since: str | None, as_json_flag: bool, home: Path | None
) -> None:
    """Judge the newest build against its baseline and list the alerts; each is kept.

    \b
    Default thresholds (change them under [tool.buildtape.alerts] or in buildtape.toml):
      success rate over the last 20 builds < 80%             warning, < 50% critical
      p95 duration of the last 20 builds > 1.5x the 20 before      error
      a step slower than its baseline median by > 20% and > 1 s    warning
      a secret found in an output file                             critical
    The baseline is the median and MAD of the last 20 successful builds; a rule needs
    5 of them (alerts.min_baseline) before it judges anything.
    """
    if show_history:
        cfg = load_here()
        with HistoryStore(home or cfg.home, create=False) as store:
            rows = [
                r
                for r in past(store, parse_since(since) if since else None)
                if at_least(r["level"], level)
            ]
        if as_json_flag:
            click.echo(json.dumps(rows, indent=2, sort_keys=True))
        for r in [] if as_json_flag else rows:
            click.echo(f"{r['raised_at']}  {r['level'].upper():<8} {r['rule']:<16} {r['message']}")
        if not rows and not as_json_flag:
            click.echo("no alerts raised so far")
        return
    found, path = _judge(home)
    shown = [a for a in found if at_least(a.level, level)]
    if as_json_flag:
        click.echo(as_json(shown))
        return
    if not shown:
        click.echo(f"no alerts at or above {level} (history: {path})")
    for a in shown:
        click.echo(_line(a))


@click.command("check")
@click.option(
    "--fail-on",
    type=click.Choice(LEVELS),
    default="error",
    show_default=True,
    help="Exit 1 when an alert at or above this level is raised.",
)
@click.option("--json", "as_json_flag", is_flag=True, help="A JSON array of the alerts.")
@home_option
def check_cmd(fail_on: str, as_json_flag: bool, home: Path | None) -> None:
    """The CI gate: print the newest build's alerts; exit 1 at or above --fail-on.

    \b
    Example, as the step after the build:
      buildtape record -- make -j8 && buildtape check --fail-on warning
    """
    found, _ = _judge(home)
    if as_json_flag:
        click.echo(as_json(found))
    else:
        for a in found:
            click.echo(_line(a))
    failing = [a for a in found if at_least(a.level, fail_on)]
    if failing:
        click.echo(
            f"buildtape: check failed: {len(failing)} alert(s) at or above {fail_on}", err=True
        )
        sys.exit(ExitCode.DIFFERENT)
    if not as_json_flag:
        click.echo(f"check passed: no alerts at or above {fail_on}")
