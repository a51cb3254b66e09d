"""``buildtape gc``: delete old tapes by age, count and total size (``history.retention``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.colour import say
from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.params import HISTORY_CODES, SIZE, epilog, home_option, json_option, size_bytes
from buildtape.text import history as text
from history.options import RetentionOptions
from history.retention import apply, plan
from history.store import HistoryStore

EXAMPLES = [
    "buildtape gc --keep-last 200 --keep-days 14 --dry-run",
    "buildtape gc --max-size 5G",
]


@click.command("gc", epilog=epilog(EXAMPLES, HISTORY_CODES))
@click.option(
    "--keep-days", type=click.IntRange(0), metavar="N", help="Keep builds of the last N days."
)
@click.option("--keep-last", type=click.IntRange(0), metavar="N", help="Keep the newest N builds.")
@click.option(
    "--max-size",
    type=SIZE,
    help="Then cap the kept tapes' total size (e.g. 5G), dropping the oldest first.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@json_option("json: the plan.")
@home_option
def gc_cmd(
    keep_days: int | None,
    keep_last: int | None,
    max_size: int | None,
    dry_run: bool,
    fmt: str,
    home: Path | None,
) -> ExitCode:
    """Delete tapes of the history that no retention rule keeps.

    \b
    A tape is kept if it is among the newest --keep-last builds OR started within
    --keep-days; --max-size then caps the total, oldest dropped first. Defaults come
    from [tool.buildtape.gc] or buildtape.toml. A tape being written by a recorder is
    never deleted; index rows of tapes already gone from disk are dropped, and partial
    files left by killed recorders are removed.

    Only tapes inside the history's own tapes directory are ever deleted: a tape written
    elsewhere (`record -o good.tape`) is yours, and gc only forgets its row in the index.
    """
    cfg = load_here()
    settings = cfg.gc
    configured_size = None
    if max_size is None and settings.max_size is not None:
        try:
            configured_size = size_bytes(settings.max_size)
        except ValueError as exc:
            raise click.UsageError(f"gc.max_size: {exc}") from None
    options = RetentionOptions(
        keep_last=keep_last if keep_last is not None else settings.keep_last,
        keep_days=keep_days if keep_days is not None else settings.keep_days,
        max_bytes=max_size if max_size is not None else configured_size,
    )
    if not options.keeps_anything:
        raise click.UsageError(
            "say what to keep: --keep-days, --keep-last or --max-size (or set them under "
            "[tool.buildtape.gc])"
        )
    with HistoryStore(home or cfg.home, create=False) as store:
        p = plan(store, options)
        problems = [] if dry_run else apply(store, p)
    if fmt == "json":
        click.echo(json.dumps({"dry_run": dry_run, **p.__dict__}, indent=2, sort_keys=True))
    else:
        click.echo(text.retention(p, dry_run), nl=False)
    for line in problems:
        say(f"buildtape: warning: could not delete {line}")
    return ExitCode.OK
