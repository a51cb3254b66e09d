"""``buildtape extract``: a standalone reproducer of one step."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.text import tape as text
from recorder.tape import open_tape
from recorder.trust import printable
from replay.extract import ExtractOptions, extract


@click.command("extract")
@click.argument("tape", type=click.Path(path_type=Path))
@click.option("--step", type=int, required=True, help="The step ID (see `buildtape ps`).")
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="New or empty directory for the reproducer.",
)
def extract_cmd(tape: Path, step: int, out_dir: Path) -> ExitCode:
    """Write a standalone reproducer of one step: its inputs and a run.sh.

    The directory can be attached to a bug report: `sh run.sh` re-runs the step with the
    recorded cwd, environment and argv (at the recorded path in a bwrap sandbox when the
    step needs it), exits with the step's status, and compares it and the outputs with the
    recording (`sha256sum -c expected.sha256`). No buildtape is needed to run it.
    """
    with open_tape(tape) as t:
        result = extract(t, ExtractOptions(step, out_dir))
    click.echo(printable(text.extracted(result, out_dir), one_line=False), nl=False)
    return ExitCode.OK
