"""``buildtape show``: what a tape holds, for people or as the documented JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape import colour
from buildtape.exit_codes import ExitCode
from buildtape.params import TAPE_CODES, epilog, json_option, tape_argument
from buildtape.text import tape as text
from recorder.summary import summarise
from recorder.tape import open_tape
from recorder.trust import json_safe, printable


@click.command(
    "show",
    epilog=epilog(
        ["buildtape show ci.tape", "buildtape show last", "buildtape show last~1 --format json"],
        TAPE_CODES,
    ),
)
@tape_argument()
@json_option("json: the documented JSON object of the summary.")
def show_cmd(tape: Path, fmt: str) -> ExitCode:
    """Summarise a tape: command, status, host, slowest and failing steps, outputs, warnings.

    TAPE is a path, or `last`, `last~N` (N builds before the newest) or `#ID` (the ID
    `buildtape history` shows).
    """
    with open_tape(tape) as t:
        summary = summarise(t)
        if fmt == "json":
            out = json.dumps(summary.to_json(), indent=2, sort_keys=True, ensure_ascii=False)
            click.echo(json_safe(out))
        else:
            colour.echo(printable(text.show(summary), one_line=False), "show", nl=False)
    return ExitCode.OK
