"""``buildtape stats``: the history of a period, for people (tables) or machines (json)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import (
    GROUP_BY,
    HISTORY_CODES,
    epilog,
    home_option,
    json_option,
    old_spelling,
    selection_options,
    since_option,
)
from buildtape.text import history as text
from history.options import PERIODS, BuildSelection, StatsOptions
from history.stats import stats
from history.store import HistoryStore

EXAMPLES = [
    "buildtape stats",
    "buildtape stats --since 7d --by label:branch --format json",
    "buildtape stats --branch main --command 'make*'",
]


@click.command("stats", epilog=epilog(EXAMPLES, HISTORY_CODES))
@since_option("Only builds started since WHEN (default: the whole history).")
# The old spelling (a fixed period) for one release: --since 1h, 1d, 7d say the same.
@click.option("--period", type=click.Choice(PERIODS), hidden=True)
@click.option(
    "--by",
    type=GROUP_BY,
    help="Also break the build figures down by label set, one label's value, command or branch.",
)
@selection_options
@json_option("json: one object (documented in docs/history.md).")
@home_option
def stats_cmd(
    since: str | None,
    period: str | None,
    by: str | None,
    select: BuildSelection,
    fmt: str,
    home: Path | None,
) -> ExitCode:
    """Success rate, duration percentiles, failures, slowest steps, trend and metrics.

    \b
    Percentiles interpolate between the nearest ranks. Steps are matched across builds
    by their normalised command line (workspace path, temp names and pids rewritten).
    Failures are grouped by failing step and exit code, with the newest error line.
    Interrupted builds (SIGINT, SIGTERM, exit 130 or 143) are counted apart: they are
    not in the rates, the percentiles, the failures or the slowest steps.
    """
    if period is not None:
        old_spelling("--period", "--since (1h, 1d, 7d)")
    options = StatsOptions(period=period or StatsOptions.period, by=by, since=since, select=select)
    with HistoryStore(home or load_here().home, create=False) as store:
        result = stats(store, options)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        click.echo(text.stats(result))
    return ExitCode.OK
