"""``buildtape history``: the recordings of this workspace, newest first."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import KEY_VALUE, SINCE, json_option
from buildtape.text import history as text
from history.indexing import reindex as reindex_tapes
from history.options import ReindexOptions
from history.store import HistoryStore
from recorder.trust import printable


@click.command("history")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--status", type=click.Choice(["succeeded", "failed", "interrupted"]))
@click.option(
    "--label",
    "labels",
    multiple=True,
    type=KEY_VALUE,
    help="Only tapes with this label. Repeatable.",
)
@click.option(
    "--since", type=SINCE, help="Only recordings since: 7d, 12h, 30m, or an ISO 8601 time."
)
@json_option("A JSON array, newest first.")
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
    as_json: bool,
    reindex: bool,
    scan: tuple[Path, ...],
    home: Path | None,
) -> ExitCode:
    """List recordings, newest first: when, status, exit, duration, processes, command.

    Every `buildtape record` indexes its tape here (unless --no-store). A tape moved or
    deleted by hand is shown as missing; --reindex rebuilds the index from the tapes on disk.
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
                click.echo(f"buildtape: warning: not indexed: {printable(line)}", err=True)
        builds = store.builds(limit, status, dict(labels), since)
    if as_json:
        click.echo(json.dumps([b.to_json() for b in builds], indent=2, sort_keys=True))
    elif not builds:
        click.echo(f"no recordings in {home}")
    else:
        click.echo(text.builds(builds), nl=False)
    return ExitCode.OK
