"""``buildtape extract``: a standalone reproducer of one step."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.params import TAPE_CODES, epilog, old_spelling, tape_argument
from buildtape.text import tape as text
from recorder.tape import open_tape
from recorder.trust import printable
from replay.extract import ExtractOptions, extract

EXAMPLES = [
    "buildtape extract fail.tape --step 17 --into repro/",
    "sh repro/run.sh && sha256sum -c repro/expected.sha256",
]


@click.command("extract", epilog=epilog(EXAMPLES, (*TAPE_CODES, ExitCode.REPLAY_FAILED)))
@tape_argument()
@click.option("--step", type=int, required=True, help="The step ID (see `buildtape ps`).")
@click.option(
    "--into",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="New or empty directory for the reproducer.",
)
# -o is a file in every other command; here it was the directory (kept for one release).
@click.option(
    "-o", "--output", "old_output", type=click.Path(file_okay=False, path_type=Path), hidden=True
)
def extract_cmd(tape: Path, step: int, out_dir: Path | None, old_output: Path | None) -> ExitCode:
    """Write a standalone reproducer of one step: its inputs and a run.sh.

    The directory can be attached to a bug report: `sh run.sh` re-runs the step with the
    recorded cwd, environment and argv (at the recorded path in a bwrap sandbox when the
    step needs it), exits with the step's status, and compares it and the outputs with the
    recording (`sha256sum -c expected.sha256`). No buildtape is needed to run it.
    """
    if old_output is not None:
        old_spelling("extract -o DIR", "--into DIR")
        out_dir = out_dir or old_output
    if out_dir is None:
        raise click.UsageError("say where: --into DIR (a new or empty directory)")
    with open_tape(tape) as t:
        result = extract(t, ExtractOptions(step, out_dir))
    click.echo(printable(text.extracted(result, out_dir), one_line=False), nl=False)
    return ExitCode.OK
