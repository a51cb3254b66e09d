"""``buildtape stats``: the history of a period, for people (tables) or machines (--json)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import GROUP_BY, home_option, json_option, selection_options
from buildtape.text import history as text
from history.options import PERIODS, BuildSelection, StatsOptions
from history.stats import stats
from history.store import HistoryStore


@click.command("stats")
@click.option(
    "--period",
    type=click.Choice(PERIODS),
    default=StatsOptions.period,
    show_default=True,
    help="Only builds started in the last hour, day or week.",
)
@click.option(
    "--by",
    type=GROUP_BY,
    help="Also break the build figures down by label set, one label's value, command or branch.",
)
@selection_options
@json_option("One JSON object (documented in docs).")
@home_option
def stats_cmd(
    period: str, by: str | None, select: BuildSelection, as_json: bool, home: Path | None
) -> ExitCode:
    """Success rate, duration percentiles, failures, slowest steps, trend and metrics.

    \b
    Percentiles interpolate between the nearest ranks. Steps are matched across builds
    by their normalised command line (workspace path, temp names and pids rewritten).
    Failures are grouped by failing step and exit code, with the newest error line.
    Interrupted builds (SIGINT, SIGTERM, exit 130 or 143) are counted apart: they are
    not in the rates, the percentiles, the failures or the slowest steps.

    \b
    Examples:
      buildtape stats
      buildtape stats --period week --by label:branch --json
      buildtape stats --branch main --command 'make*'
    """
    with HistoryStore(home or load_here().home, create=False) as store:
        result = stats(store, StatsOptions(period, by, select=select))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        click.echo(text.stats(result))
    return ExitCode.OK
