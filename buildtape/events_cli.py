"""``buildtape events``: events across the history, or every event of one tape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from buildtape.config import load_here
from buildtape.export_rows import rows
from buildtape.history_store import HistoryStore, parse_since
from buildtape.stats_cli import home_option
from recorder.trust import printable


def _detail(event: dict[str, Any]) -> str:
    rest = {k: v for k, v in event.items() if k not in ("t", "kind", "name")}
    return json.dumps(rest, sort_keys=True) if rest else ""


@click.command("events")
@click.argument("tape", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--type", "kind", metavar="KIND", help="Only this kind: event, metric, span, ...")
@click.option("--since", metavar="WHEN", help="History: only builds since 7d, 12h, 30m or ISO.")
@click.option(
    "--count", type=click.IntRange(1), default=100, show_default=True, help="At most N events."
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@home_option
def events_cmd(
    tape: Path | None,
    kind: str | None,
    since: str | None,
    count: int,
    as_json: bool,
    home: Path | None,
) -> None:
    """List events: the newest builds' first, or every event of TAPE in time order.

    \b
    The history keeps the build's own events (event, metric, span, invalid_event),
    warnings and its outcome (build_completed, build_failed, build_interrupted); a
    tape also has the per-process ones (process_started, process_exited, file_written).

    \b
    Examples:
      buildtape events --type metric --since 7d
      buildtape events ci.tape --type span --json
    """
    found: list[dict[str, Any]]
    if tape is not None:
        if since:
            raise click.UsageError("--since selects builds of the history; not with a TAPE")
        from recorder.reading import open_tape
        from recorder.timeline import timeline

        with open_tape(tape) as t:
            found = [
                {"tape": str(tape), "started_at": t.manifest.started_at, **e.to_dict()}
                for e in timeline(t.manifest)
                if kind is None or e.kind == kind
            ][:count]
    else:
        with HistoryStore(home or load_here().home, create=False) as store:
            history = rows(store, "events", parse_since(since) if since else None, kind)
        # Newest builds first, each build's events in time order.
        history.sort(key=lambda r: r["started_at"], reverse=True)
        found = [{"tape": r["tape"], "started_at": r["started_at"], **r["data"]} for r in history]
        found = found[:count]
    if as_json:
        click.echo(json.dumps(found, indent=2, sort_keys=True))
        return
    if not found:
        click.echo("no events")
    for e in found:
        name = e.get("name") or ""
        detail = _detail({k: v for k, v in e.items() if k not in ("tape", "started_at")})
        line = f"{e['started_at']} +{e['t']:>9.3f}s {e['kind']:<18} {name:<20} {detail}"
        click.echo(printable(line))
