"""``buildtape check``: the CI gate on the newest build's alerts."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape import colour
from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import HISTORY_CODES, epilog, home_option, json_option, selection_options
from buildtape.text import history as text
from history.alerts import as_json as alerts_json
from history.alerts import at_least, judge
from history.errors import NoHistory
from history.options import LEVELS, BuildSelection
from history.store import HistoryStore

EXAMPLES = [
    "buildtape record -- make -j8 && buildtape check --fail-on warning",
    "buildtape check --home ci-history/ --format json",
    'buildtape check --branch "$CI_COMMIT_REF_NAME" --label job=linux',
]


@click.command("check", epilog=epilog(EXAMPLES, (*HISTORY_CODES, ExitCode.DIFFERENT)))
@click.option(
    "--fail-on",
    type=click.Choice(LEVELS),
    default="error",
    show_default=True,
    help="Exit 1 when an alert at or above this level is raised.",
)
@selection_options
@json_option("json: an array of the alerts.")
@home_option
def check_cmd(fail_on: str, select: BuildSelection, fmt: str, home: Path | None) -> ExitCode:
    """The CI gate: print the newest build's alerts; exit 1 at or above --fail-on.

    A history without builds fails (exit 4): in CI it means the build was recorded
    somewhere else, or not at all, and a gate that passes on nothing guards nothing.
    So does a --command, --label or --branch that selects no build (a misspelt branch);
    with them, only the selected builds are judged (other jobs may share the history).
    """
    as_json = fmt == "json"
    cfg = load_here()
    where = home or cfg.home
    with HistoryStore(where, create=False) as store:
        if store.build_count() == 0:
            raise NoHistory(
                f"no builds in the history at {where}; record one first "
                "(`buildtape record -- make`), or point --home at the history it went to"
            )
        found = judge(store, cfg.alerts, select)
    if as_json:
        click.echo(alerts_json(found))
    else:
        for a in found:
            click.echo(text.alert(a))
    failing = [a for a in found if at_least(a.level, fail_on)]
    if failing:
        colour.say(f"buildtape: check failed: {len(failing)} alert(s) at or above {fail_on}")
        return ExitCode.DIFFERENT
    if not as_json:
        colour.echo(f"check passed: no alerts at or above {fail_on}", "check")
    return ExitCode.OK
