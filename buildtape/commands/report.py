"""``buildtape report``: one self-contained HTML page about a tape, for people."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.output import write_text, wrote
from buildtape.params import TAPE_CODES, epilog, output_option, tape_argument

EXAMPLES = [
    "buildtape report ci.tape -o ci.html",
    "buildtape record -o ci.tape -- make -j8 || buildtape report ci.tape -o ci.html",
    "buildtape report last",
]


@click.command("report", epilog=epilog(EXAMPLES, TAPE_CODES))
@tape_argument()
@output_option(
    "Where to write the page ('-' for stdout). Default: the tape's name with .html, "
    "in the current directory."
)
def report_cmd(tape: Path, output: str | None) -> ExitCode:
    """Write an HTML report of TAPE: one file, works offline, opens in any browser.

    \b
    It shows the command, status and host; why it failed (the failing steps and their
    first error line); a zoomable timeline of every process with the critical path and
    the parallelism against the CPU count; a flamegraph with search; the slowest steps;
    outputs, inputs, environment (secrets shown as redacted), events and the output.
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
    wrote(target, html)
    return ExitCode.OK
