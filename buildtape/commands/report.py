"""``buildtape report``: one self-contained HTML page about a tape, for people."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.output import write_text
from buildtape.text.units import human_size


@click.command("report")
@click.argument("tape", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Where to write the page ('-' for stdout). Default: the tape's name with .html, "
    "in the current directory.",
)
def report_cmd(tape: Path, output: str | None) -> ExitCode:
    """Write an HTML report of TAPE: one file, works offline, opens in any browser.

    \b
    It shows the command, status and host; why it failed (the failing steps and their
    first error line); a zoomable timeline of every process with the critical path and
    the parallelism against the CPU count; a flamegraph with search; the slowest steps;
    outputs, inputs, environment (secrets shown as redacted), events and the output.

    \b
    Example:
      buildtape record -o ci.tape -- make -j8 || buildtape report ci.tape -o ci.html
    """
    from recorder.tape import open_tape
    from reports.render import render_report

    with open_tape(tape) as t:
        m = t.manifest
        if len(m.processes) > 2000 or m.sampling.count > 20_000:
            # A big tape takes seconds: say so before going quiet.
            click.echo(
                f"buildtape: building the report of {len(m.processes)} processes and "
                f"{m.sampling.count} Python samples...",
                err=True,
            )
        html = render_report(t)
    target = output or f"{tape.name.removesuffix('.tape')}.html"
    write_text(target, html)
    if target != "-":
        click.echo(f"buildtape: wrote {target} ({human_size(len(html.encode()))})", err=True)
    return ExitCode.OK
