"""``buildtape export``: the history as CSV or JSON, or tapes as OpenTelemetry traces."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.export_rows import QUERIES, rows, to_csv, to_json
from buildtape.history_store import HistoryStore, parse_since
from buildtape.output import write_text
from buildtape.stats_cli import home_option


@click.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json", "otlp"]), default="json", show_default=True
)
@click.option(
    "--what",
    type=click.Choice(sorted(QUERIES)),
    default="builds",
    show_default=True,
    help="csv/json: which rows. Lists and objects are JSON text in CSV cells.",
)
@click.option("-o", "--output", metavar="FILE", help="csv/json: write here (atomically).")
@click.option("--since", metavar="WHEN", help="Only builds since 7d, 12h, 30m or an ISO time.")
@click.option(
    "--endpoint",
    metavar="URL",
    help="otlp: the OTLP/HTTP traces URL. Default: config otlp.endpoint, "
    "else http://localhost:4318/v1/traces.",
)
@click.option(
    "--last",
    type=click.IntRange(1),
    metavar="N",
    help="otlp: the newest N builds of the history (default: the newest one).",
)
@click.argument("tapes", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@home_option
def export_cmd(
    fmt: str,
    what: str,
    output: str | None,
    since: str | None,
    endpoint: str | None,
    last: int | None,
    tapes: tuple[Path, ...],
    home: Path | None,
) -> None:
    """Export the history (csv, json) or tapes as OpenTelemetry traces (otlp).

    \b
    Examples:
      buildtape export --format csv --what steps -o steps.csv
      buildtape export --format json --what metrics --since 7d
      buildtape export --format otlp --endpoint http://collector:4318/v1/traces ci.tape

    With --format otlp each tape becomes one trace: the build the root span, each
    process a child of its parent process, custom spans nested where they ran. A
    TRACEPARENT in the recorded environment joins the build to the CI system's trace.
    """
    cfg = load_here()
    since_iso = parse_since(since) if since else None
    if fmt != "otlp":
        if tapes or last or endpoint:
            raise click.UsageError("TAPES, --last and --endpoint go with --format otlp")
        with HistoryStore(home or cfg.home, create=False) as store:
            data = rows(store, what, since_iso)
        write_text(output, to_csv(what, data) if fmt == "csv" else to_json(data))
        return
    if output:
        raise click.UsageError("--format otlp sends to --endpoint; it writes no file")
    _export_otlp(
        list(tapes),
        home or cfg.home,
        since_iso,
        last,
        endpoint or cfg.get("otlp.endpoint"),
        cfg.get("otlp.timeout_s"),
    )


def _export_otlp(
    tapes: list[Path],
    home: Path,
    since: str | None,
    last: int | None,
    endpoint: str,
    timeout_s: float,
) -> None:
    from buildtape.otlp import build_spans, send
    from recorder.reading import open_tape

    if not tapes:
        with HistoryStore(home, create=False) as store:
            found = rows(store, "builds", since)
        if not found:
            raise click.UsageError(f"no builds in the history at {home} to export")
        chosen = found if since and not last else found[-(last or 1) :]
        tapes = [Path(r["tape"]) for r in chosen]
    sent = 0
    for path in tapes:
        with open_tape(path) as t:
            spans = build_spans(t.manifest, str(path))
        send(spans, endpoint, timeout_s)
        sent += len(spans)
        click.echo(f"buildtape: sent {len(spans)} spans of {path} to {endpoint}", err=True)
    click.echo(f"buildtape: exported {len(tapes)} trace(s), {sent} spans", err=True)
