"""``buildtape export``: the history as CSV or JSON, tapes as OpenTelemetry traces, or one
tape as a compilation database or a JUnit report."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.config import load_here
from buildtape.exit_codes import ExitCode
from buildtape.output import write_text, wrote
from buildtape.params import (
    HISTORY_CODES,
    TAPE,
    TAPE_CODES,
    epilog,
    format_option,
    home_option,
    limit_option,
    output_option,
    since_option,
)
from buildtape.tape_exports import TAPE_FORMATS, export_tape
from history.export import rows, to_csv, to_json
from history.options import ExportOptions, OtlpOptions
from history.store import EXPORTABLE, HistoryStore

EXAMPLES = [
    "buildtape export --format csv --what steps -o steps.csv",
    "buildtape export --format json --what metrics --since 7d",
    "buildtape export --format otlp --endpoint http://collector:4318/v1/traces ci.tape",
    "buildtape export --format otlp --limit 5 --timeout 3",
    "buildtape export --format compile-commands ci.tape -o compile_commands.json",
    "buildtape export --format junit last -o buildtape-junit.xml",
]


@click.command("export", epilog=epilog(EXAMPLES, (*HISTORY_CODES, *TAPE_CODES)))
@format_option(
    ("csv", "json", "otlp", *TAPE_FORMATS),
    "json",
    "csv, json: the history; otlp: tapes as OpenTelemetry traces; compile-commands "
    "(compile_commands.json), junit: of one TAPE.",
)
@click.option(
    "--what",
    type=click.Choice(EXPORTABLE),
    default=ExportOptions.what,
    show_default=True,
    help="csv/json: which rows. Lists and objects are JSON text in CSV cells.",
)
@output_option("Write to FILE (atomically) instead of stdout.")
@since_option("Only builds since WHEN.")
@click.option(
    "--endpoint",
    metavar="URL",
    help="otlp: the OTLP/HTTP traces URL. Default: config otlp.endpoint, "
    f"else {OtlpOptions.endpoint}.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="otlp: how long to wait for the receiver. Default: config otlp.timeout_s, "
    f"else {OtlpOptions.timeout_s:g}.",
)
@limit_option(
    None, "otlp: the newest N builds of the history (default: the newest one).", ("--last",)
)
@click.argument("tapes", nargs=-1, type=TAPE)
@home_option
def export_cmd(
    fmt: str,
    what: str,
    output: str | None,
    since: str | None,
    endpoint: str | None,
    timeout: float | None,
    limit: int | None,
    tapes: tuple[Path, ...],
    home: Path | None,
) -> ExitCode:
    """Export the history (csv, json), tapes as OpenTelemetry traces (otlp), or one tape
    as a compilation database (compile-commands) or a JUnit report (junit).

    With --format otlp each tape becomes one trace: the build the root span, each
    process a child of its parent process, custom spans nested where they ran. A
    TRACEPARENT in the recorded environment joins the build to the CI system's trace.
    """
    if fmt in TAPE_FORMATS:
        if len(tapes) != 1 or limit or endpoint or timeout:
            raise click.UsageError(
                f"--format {fmt} exports one TAPE (and takes no --limit, --endpoint, --timeout)"
            )
        text = export_tape(tapes[0], fmt)
        write_text(output, text)
        wrote(output, text)
        return ExitCode.OK
    if fmt != "otlp" and (tapes or limit or endpoint or timeout):
        raise click.UsageError("TAPES, --limit, --endpoint and --timeout go with --format otlp")
    if fmt == "otlp" and output:
        raise click.UsageError("--format otlp sends to --endpoint; it writes no file")
    cfg = load_here()
    if fmt != "otlp":
        with HistoryStore(home or cfg.home, create=False) as store:
            data = rows(store, ExportOptions(what, since))
        out = to_csv(what, data) if fmt == "csv" else to_json(data)
        write_text(output, out)
        wrote(output, out)
        return ExitCode.OK
    from history.otlp import export_traces, tapes_to_export

    options = OtlpOptions(endpoint or cfg.otlp.endpoint, timeout or cfg.otlp.timeout_s)
    chosen = list(tapes)
    if not chosen:
        with HistoryStore(home or cfg.home, create=False) as store:
            chosen = tapes_to_export(store, since, limit)
    # Sending waits on the network: say where to, and for how long at most.
    click.echo(
        f"buildtape: sending {len(chosen)} trace(s) to {options.endpoint} "
        f"(timeout {options.timeout_s:g}s, --timeout to change)",
        err=True,
    )
    spans = 0
    for sent in export_traces(chosen, options):
        spans += sent.spans
        click.echo(
            f"buildtape: sent {sent.spans} spans of {sent.tape} to {options.endpoint}", err=True
        )
    click.echo(f"buildtape: exported {len(chosen)} trace(s), {spans} spans", err=True)
    return ExitCode.OK
