"""``buildtape ps``: the recorded steps of a tape, with the IDs that name them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape import colour
from buildtape.exit_codes import ExitCode
from buildtape.params import TAPE_CODES, epilog, json_option, tape_argument
from buildtape.text import tape as text
from recorder.tape import open_tape
from recorder.trust import printable

EXAMPLES = [
    "buildtape ps ci.tape",
    "buildtape ps last --failed --tree      # what failed, under what",
    "buildtape replay ci.tape --step 17     # re-run the step with ID 17",
]


@click.command("ps", epilog=epilog(EXAMPLES, TAPE_CODES))
@tape_argument()
@click.option("--failed", "only_failed", is_flag=True, help="Only the steps that failed.")
@click.option(
    "--tree",
    is_flag=True,
    help="Each step under its parent (with --failed: the failed steps and their parents).",
)
@json_option("json: one object per step, as an array.")
def ps_cmd(tape: Path, only_failed: bool, tree: bool, fmt: str) -> ExitCode:
    """List the recorded steps (processes) with the ID that names them.

    \b
    ID is stable for a tape: use it with `buildtape replay TAPE --step ID`
    and `buildtape extract TAPE --step ID --into DIR`.
    """
    with open_tape(tape) as t:
        procs = t.manifest.processes
    if fmt == "json":
        chosen = [p for p in procs if text.failed(p)] if only_failed else procs
        rows = [
            {"id": p.id, "parent_id": p.parent_id, "pid": p.pid, "duration_s": p.duration_s,
             "exit_code": p.exit_code, "signal": p.signal, "argv": p.argv, "cwd": p.cwd}
            for p in chosen
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
    else:
        out = text.ps(procs, tree=tree, only_failed=only_failed)
        colour.echo(printable(out, one_line=False), "ps", nl=False)
    return ExitCode.OK
