"""``buildtape alerts``: what is wrong with the newest build, and what was."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import (
    HISTORY_CODES,
    epilog,
    home_option,
    json_option,
    selection_options,
    since_option,
)
from buildtape.text import history as text
from history.alerts import as_json as alerts_json
from history.alerts import at_least, judge, past
from history.options import LEVELS, BuildSelection
from history.store import HistoryStore

EXAMPLES = [
    "buildtape alerts --level warning",
    "buildtape alerts --history --since 7d --format json",
    "buildtape alerts --branch main --label job=release",
]


@click.command("alerts", epilog=epilog(EXAMPLES, HISTORY_CODES))
@click.option(
    "--level",
    type=click.Choice(LEVELS),
    default="info",
    show_default=True,
    help="Only alerts at or above this level.",
)
@click.option("--history", "show_history", is_flag=True, help="Alerts raised so far, newest first.")
@since_option("With --history: alerts raised since WHEN.")
@selection_options
@json_option("json: an array.")
@home_option
def alerts_cmd(
    level: str,
    show_history: bool,
    since: str | None,
    select: BuildSelection,
    fmt: str,
    home: Path | None,
) -> ExitCode:
    """Judge the newest build against its baseline and list the alerts; each is kept.

    \b
    Default thresholds (change them under [tool.buildtape.alerts] or in buildtape.toml):
      success rate over the last 20 builds < 80%             warning, < 50% critical
      p95 duration of the last 20 builds > 1.5x the 20 before      error
      a step slower than its baseline median by > 20% and > 1 s    warning
      a secret found in an output file                             critical
    The baseline is the median and MAD of the last 20 successful builds; a rule needs
    5 of them (alerts.min_baseline) before it judges anything. --command, --label
    and --branch judge the newest selected build against the selected builds only;
    interrupted builds (SIGINT, SIGTERM, exit 130 or 143) are never judged or compared.
    """
    as_json = fmt == "json"
    cfg = load_here()
    with HistoryStore(home or cfg.home, create=False) as store:
        if show_history:
            rows = past(store, since, level)
        else:
            found = judge(store, cfg.alerts, select)
        path = store.path
    if show_history:
        if as_json:
            click.echo(json.dumps([r.to_json() for r in rows], indent=2, sort_keys=True))
        elif not rows:
            click.echo("no alerts raised so far")
        for r in [] if as_json else rows:
            click.echo(text.raised(r))
        return ExitCode.OK
    shown = [a for a in found if at_least(a.level, level)]
    if as_json:
        click.echo(alerts_json(shown))
        return ExitCode.OK
    if not shown:
        click.echo(f"no alerts at or above {level} (history: {path})")
    for a in shown:
        click.echo(text.alert(a))
    return ExitCode.OK
