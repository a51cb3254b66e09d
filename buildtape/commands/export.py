"""``buildtape export``: the history as CSV or JSON, tapes as OpenTelemetry traces, or one
tape as a compilation database or a JUnit report."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.output import write_text
from buildtape.params import SINCE, home_option
from buildtape.tape_exports import TAPE_FORMATS, export_tape
from history.export import rows, to_csv, to_json
from history.options import ExportOptions, OtlpOptions
from history.store import EXPORTABLE, HistoryStore


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "otlp", *TAPE_FORMATS]),
    default="json",
    show_default=True,
    help="csv, json: the history; otlp: traces; compile-commands, junit: of one TAPE.",
)
@click.option(
    "--what",
    type=click.Choice(EXPORTABLE),
    default=ExportOptions.what,
    show_default=True,
    help="csv/json: which rows. Lists and objects are JSON text in CSV cells.",
)
@click.option(
    "-o", "--output", metavar="FILE", help="Write here (atomically) instead of to stdout."
)
@click.option("--since", type=SINCE, help="Only builds since 7d, 12h, 30m or an ISO time.")
@click.option(
    "--endpoint",
    metavar="URL",
    help="otlp: the OTLP/HTTP traces URL. Default: config otlp.endpoint, "
    f"else {OtlpOptions.endpoint}.",
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
) -> ExitCode:
    """Export the history (csv, json), tapes as OpenTelemetry traces (otlp), or one tape
    as a compilation database (compile-commands) or a JUnit report (junit).

    \b
    Examples:
      buildtape export --format csv --what steps -o steps.csv
      buildtape export --format json --what metrics --since 7d
      buildtape export --format otlp --endpoint http://collector:4318/v1/traces ci.tape
      buildtape export --format compile-commands ci.tape -o compile_commands.json
      buildtape export --format junit ci.tape -o buildtape-junit.xml

    With --format otlp each tape becomes one trace: the build the root span, each
    process a child of its parent process, custom spans nested where they ran. A
    TRACEPARENT in the recorded environment joins the build to the CI system's trace.
    """
    if fmt in TAPE_FORMATS:
        if len(tapes) != 1 or last or endpoint:
            raise click.UsageError(
                f"--format {fmt} exports one TAPE (and takes no --last, --endpoint)"
            )
        write_text(output, export_tape(tapes[0], fmt))
        return ExitCode.OK
    if fmt != "otlp" and (tapes or last or endpoint):
        raise click.UsageError("TAPES, --last and --endpoint go with --format otlp")
    if fmt == "otlp" and output:
        raise click.UsageError("--format otlp sends to --endpoint; it writes no file")
    cfg = load_here()
    if fmt != "otlp":
        with HistoryStore(home or cfg.home, create=False) as store:
            data = rows(store, ExportOptions(what, since))
        write_text(output, to_csv(what, data) if fmt == "csv" else to_json(data))
        return ExitCode.OK
    from history.otlp import export_traces, tapes_to_export

    options = OtlpOptions(endpoint or cfg.otlp.endpoint, cfg.otlp.timeout_s)
    chosen = list(tapes)
    if not chosen:
        with HistoryStore(home or cfg.home, create=False) as store:
            chosen = tapes_to_export(store, since, last)
    spans = 0
    for sent in export_traces(chosen, options):
        spans += sent.spans
        click.echo(
            f"buildtape: sent {sent.spans} spans of {sent.tape} to {options.endpoint}", err=True
        )
    click.echo(f"buildtape: exported {len(chosen)} trace(s), {spans} spans", err=True)
    return ExitCode.OK
