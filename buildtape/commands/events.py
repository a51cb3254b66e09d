"""``buildtape events``: events across the history, or every event of one tape."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import (
    TAPE,
    TAPE_CODES,
    epilog,
    home_option,
    json_option,
    limit_option,
    since_option,
)
from buildtape.text import history as text
from history.export import history_events, tape_events
from history.options import EventQuery
from recorder.trust import printable

EXAMPLES = [
    "buildtape events --type metric --since 7d",
    "buildtape events ci.tape --type span --format json",
    "buildtape events last --limit 20",
]


@click.command("events", epilog=epilog(EXAMPLES, TAPE_CODES))
@click.argument("tape", required=False, type=TAPE)
@click.option("--type", "kind", metavar="KIND", help="Only this kind: event, metric, span, ...")
@since_option("History: only builds since WHEN.")
@limit_option(EventQuery.count, "At most N events.", aliases=("--count",))
@json_option("json: an array.")
@home_option
def events_cmd(
    tape: Path | None,
    kind: str | None,
    since: str | None,
    limit: int,
    fmt: str,
    home: Path | None,
) -> ExitCode:
    """List events: the newest builds' first, or every event of TAPE in time order.

    \b
    The history keeps the build's own events (event, metric, span, invalid_event),
    warnings and its outcome (build_completed, build_failed, build_interrupted); a
    tape also has the per-process ones (process_started, process_exited, file_written).
    """
    query = EventQuery(kind, since, limit)
    if tape is not None:
        if since:
            raise click.UsageError("--since selects builds of the history; not with a TAPE")
        from recorder.tape import open_tape

        with open_tape(tape) as t:
            found = tape_events(t, query)
    else:
        from history.store import HistoryStore

        with HistoryStore(home or load_here().home, create=False) as store:
            found = history_events(store, query)
    if fmt == "json":
        click.echo(json.dumps(found, indent=2, sort_keys=True))
        return ExitCode.OK
    if not found:
        click.echo("no events")
    for e in found:
        click.echo(printable(text.event(e)))
    return ExitCode.OK
