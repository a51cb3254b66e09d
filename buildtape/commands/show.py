"""``buildtape show``: what a tape holds, for people or as the documented JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.params import json_option
from buildtape.text import tape as text
from buildtape.text.colour import wants_colour
from recorder import ansi
from recorder.summary import summarise
from recorder.tape import open_tape
from recorder.trust import json_safe


@click.command("show")
@click.argument("tape", type=click.Path(path_type=Path))
@json_option("Print the documented JSON object (docs/cli.md).")
def show_cmd(tape: Path, as_json: bool) -> ExitCode:
    """Summarise a tape: command, status, host, slowest and failing steps, outputs, warnings.

    The build's own colours (a failing step's stderr) are kept on a terminal, unless
    NO_COLOR is set; piped or redirected, the text is plain. Any other control character
    from the tape is shown escaped (\\e, \\x07), never sent to the terminal.
    """
    with open_tape(tape) as t:
        summary = summarise(t)
        if as_json:
            out = json.dumps(summary.to_json(), indent=2, sort_keys=True, ensure_ascii=False)
            click.echo(json_safe(out))
        else:
            colour = wants_colour(sys.stdout)
            click.echo(ansi.terminal(text.show(summary), colour), nl=False, color=colour)
    return ExitCode.OK
