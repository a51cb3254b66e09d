"""``buildtape gc``: delete old tapes by age, count and total size."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.gc import apply, plan
from buildtape.history_store import HistoryStore
from buildtape.record_cli import parse_size
from buildtape.stats_cli import home_option


@click.command("gc")
@click.option(
    "--keep-days", type=click.IntRange(0), metavar="N", help="Keep builds of the last N days."
)
@click.option("--keep-last", type=click.IntRange(0), metavar="N", help="Keep the newest N builds.")
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Then cap the kept tapes' total size (e.g. 5G), dropping the oldest first.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON.")
@home_option
def gc_cmd(
    keep_days: int | None,
    keep_last: int | None,
    max_size: str | None,
    dry_run: bool,
    as_json: bool,
    home: Path | None,
) -> None:
    """Delete tapes of the history that no retention rule keeps.

    \b
    A tape is kept if it is among the newest --keep-last builds OR started within
    --keep-days; --max-size then caps the total, oldest dropped first. Defaults come
    from [tool.buildtape.gc] or buildtape.toml. A tape being written by a recorder is
    never deleted; index rows of tapes already gone from disk are dropped, and partial
    files left by killed recorders are removed.

    \b
    Examples:
      buildtape gc --keep-last 200 --keep-days 14 --dry-run
      buildtape gc --max-size 5G
    """
    cfg = load_here()
    keep_days = keep_days if keep_days is not None else cfg.get("gc.keep_days")
    keep_last = keep_last if keep_last is not None else cfg.get("gc.keep_last")
    max_size = max_size if max_size is not None else cfg.get("gc.max_size")
    if keep_days is None and keep_last is None and max_size is None:
        raise click.UsageError(
            "say what to keep: --keep-days, --keep-last or --max-size (or set them under "
            "[tool.buildtape.gc])"
        )
    limit = parse_size(max_size) if max_size is not None else None
    with HistoryStore(home or cfg.home, create=False) as store:
        p = plan(store, keep_last, keep_days, limit)
        problems = [] if dry_run else apply(store, p)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **p.__dict__}, indent=2, sort_keys=True))
    else:
        verb = "would delete" if dry_run else "deleted"
        for tape in p.delete:
            click.echo(f"{verb} {tape}")
        for tape in p.busy:
            click.echo(f"left alone (being written): {tape}")
        click.echo(
            f"{verb} {len(p.delete)} tape(s), {p.freed_bytes / 1e6:.1f} MB; kept "
            f"{len(p.keep)} ({p.kept_bytes / 1e6:.1f} MB); {len(p.missing)} already missing "
            f"dropped from the index; {len(p.stale_partials)} stale partial file(s)"
            + (" removed" if not dry_run else "")
        )
    for line in problems:
        click.echo(f"buildtape: warning: could not delete {line}", err=True)
