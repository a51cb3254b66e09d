"""``buildtape history``: the recordings of this workspace, newest first."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.history_store import HistoryStore, parse_since
from buildtape.show_text import short_argv


@click.command("history")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--status", type=click.Choice(["succeeded", "failed", "interrupted"]))
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only tapes with this label. Repeatable.",
)
@click.option(
    "--since", metavar="WHEN", help="Only recordings since: 7d, 12h, 30m, or an ISO 8601 time."
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array, newest first.")
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
    labels: tuple[str, ...],
    since: str | None,
    as_json: bool,
    reindex: bool,
    scan: tuple[Path, ...],
    home: Path | None,
) -> None:
    """List recordings, newest first: when, status, exit, duration, processes, command.

    Every `buildtape record` indexes its tape here (unless --no-store). A tape moved or
    deleted by hand is shown as missing; --reindex rebuilds the index from the tapes on disk.
    """
    wanted = {}
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--label")
        wanted[key] = value
    home = home or load_here().home
    with HistoryStore(home, create=reindex) as store:
        if reindex:
            indexed, bad = store.reindex([home, *scan])
            click.echo(
                f"reindexed {indexed} tapes from {home}" + "".join(f", {p}" for p in scan), err=True
            )
            for line in bad:
                click.echo(f"buildtape: warning: not indexed: {line}", err=True)
        builds = store.builds(limit, status, wanted, parse_since(since) if since else None)
    if as_json:
        click.echo(json.dumps([b.to_json() for b in builds], indent=2, sort_keys=True))
        return
    if not builds:
        click.echo(f"no recordings in {home}")
        return
    click.echo(f"{'STARTED':<24} {'STATUS':<11} {'EXIT':>4} {'DURATION':>9} {'PROCS':>5}  COMMAND")
    for b in builds:
        exit_text = "-" if b.exit_code is None else str(b.exit_code)
        label_text = " ".join(f"{k}={v}" for k, v in sorted(b.labels.items()))
        missing = "  (tape missing: " + b.tape + ")" if not b.present else ""
        label_part = f"  [{label_text}]" if label_text else ""
        click.echo(
            f"{b.started_at:<24} {b.status:<11} {exit_text:>4} {b.duration_s:>8.2f}s "
            f"{b.processes:>5}  {short_argv(b.command, 60)}{label_part}{missing}"
        )
