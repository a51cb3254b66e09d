"""``buildtape check``: the CI gate on the newest build's alerts."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import home_option, json_option, selection_options
from buildtape.text import history as text
from history.alerts import as_json as alerts_json
from history.alerts import at_least, judge
from history.options import LEVELS, BuildSelection
from history.store import HistoryStore


@click.command("check")
@click.option(
    "--fail-on",
    type=click.Choice(LEVELS),
    default="error",
    show_default=True,
    help="Exit 1 when an alert at or above this level is raised.",
)
@selection_options
@json_option("A JSON array of the alerts.")
@home_option
def check_cmd(fail_on: str, select: BuildSelection, as_json: bool, home: Path | None) -> ExitCode:
    """The CI gate: print the newest build's alerts; exit 1 at or above --fail-on.

    \b
    Example, as the step after the build:
      buildtape record -- make -j8 && buildtape check --fail-on warning

    \b
    Judge this branch's builds of one job only (other jobs share the history):
      buildtape check --branch "$CI_COMMIT_BRANCH" --label job=linux
    """
    cfg = load_here()
    with HistoryStore(home or cfg.home, create=False) as store:
        found = judge(store, cfg.alerts, select)
    if as_json:
        click.echo(alerts_json(found))
    else:
        for a in found:
            click.echo(text.alert(a))
    failing = [a for a in found if at_least(a.level, fail_on)]
    if failing:
        click.echo(
            f"buildtape: check failed: {len(failing)} alert(s) at or above {fail_on}", err=True
        )
        return ExitCode.DIFFERENT
    if not as_json:
        click.echo(f"check passed: no alerts at or above {fail_on}")
    return ExitCode.OK
