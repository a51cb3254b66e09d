"""``buildtape history``: the recordings of this workspace, newest first."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape import colour
from buildtape.colour import say
from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import (
    HISTORY_CODES,
    KEY_VALUE,
    epilog,
    json_option,
    limit_option,
    since_option,
)
from buildtape.text import history as text
from history.indexing import reindex as reindex_tapes
from history.options import ReindexOptions
from history.store import HistoryStore
from recorder.trust import printable

EXAMPLES = [
    "buildtape history --limit 5",
    "buildtape history --status failed --since 7d",
    "buildtape show '#12'                         # the build with ID 12",
    "buildtape history --reindex --scan ci-tapes/",
]


@click.command("history", epilog=epilog(EXAMPLES, HISTORY_CODES))
@limit_option(20, "At most N recordings.", aliases=("--count", "--last"))
@click.option("--status", type=click.Choice(["succeeded", "failed", "interrupted"]))
@click.option(
    "--label",
    "labels",
    multiple=True,
    type=KEY_VALUE,
    help="Only tapes with this label. Repeatable.",
)
@since_option("Only recordings since WHEN.")
@json_option("json: an array, newest first.")
@click.option("--reindex", is_flag=True, help="Rebuild the index from the tapes on disk first.")
@click.option(
    "--scan",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="With --reindex: also index the tapes under DIR (tapes written with -o elsewhere).",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    help="History directory. Default: $BUILDTAPE_HOME, else .buildtape in the workspace.",
)
def history_cmd(
    limit: int,
    status: str | None,
    labels: tuple[tuple[str, str], ...],
    since: str | None,
    fmt: str,
    reindex: bool,
    scan: tuple[Path, ...],
    home: Path | None,
) -> ExitCode:
    """List recordings, newest first: ID, when, status, exit, duration, processes, tape
    and command.

    Every `buildtape record` indexes its tape here (unless --no-store). Any command that
    takes a tape takes `#ID` for the tape of that row, `last` for the newest and `last~N`
    for N before it. A tape moved or deleted by hand is shown as missing; --reindex
    rebuilds the index from the tapes on disk (and numbers the builds again).
    """
    home = home or load_here().home
    with HistoryStore(home, create=reindex) as store:
        if reindex:
            done = reindex_tapes(store, ReindexOptions((home, *scan)))
            click.echo(
                f"reindexed {done.indexed} tapes from {home}" + "".join(f", {p}" for p in scan),
                err=True,
            )
            for line in done.unreadable:
                say(f"buildtape: warning: not indexed: {printable(line)}")
        builds = store.builds(limit, status, dict(labels), since)
    if fmt == "json":
        click.echo(json.dumps([b.to_json() for b in builds], indent=2, sort_keys=True))
    elif not builds:
        click.echo(f"no recordings in {home}")
    else:
        colour.echo(printable(text.builds(builds), one_line=False), "history", nl=False)
    return ExitCode.OK
