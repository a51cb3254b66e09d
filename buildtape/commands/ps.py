"""``buildtape ps``: the recorded steps of a tape, with the IDs that name them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.params import json_option
from buildtape.text import tape as text
from recorder.tape import open_tape
from recorder.trust import printable


@click.command("ps")
@click.argument("tape", type=click.Path(path_type=Path))
@json_option("One object per step, as a JSON array.")
def ps_cmd(tape: Path, as_json: bool) -> ExitCode:
    """List the recorded steps (processes) with the ID that names them.

    \b
    ID is stable for a tape: use it with `buildtape replay TAPE --step ID`
    and `buildtape extract TAPE --step ID -o DIR`.
    """
    with open_tape(tape) as t:
        procs = t.manifest.processes
    if as_json:
        rows = [
            {"id": p.id, "parent_id": p.parent_id, "pid": p.pid, "duration_s": p.duration_s,
             "exit_code": p.exit_code, "signal": p.signal, "argv": p.argv, "cwd": p.cwd}
            for p in procs
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
    else:
        click.echo(printable(text.ps(procs), one_line=False), nl=False)
    return ExitCode.OK
