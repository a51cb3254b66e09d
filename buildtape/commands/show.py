"""``buildtape show``: what a tape holds, for people, as the documented JSON, or as a
Markdown summary for CI (``$GITHUB_STEP_SUMMARY``, merge-request comments)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape import colour
from buildtape.exit_codes import ExitCode
from buildtape.params import TAPE_CODES, epilog, format_option, tape_argument
from buildtape.text import tape as text
from recorder.summary import summarise
from recorder.tape import open_tape
from recorder.trust import json_safe, printable


@click.command(
    "show",
    epilog=epilog(
        [
            "buildtape show ci.tape",
            "buildtape show last",
            "buildtape show last~1 --format json",
            'buildtape show ci.tape --format markdown >> "$GITHUB_STEP_SUMMARY"',
        ],
        TAPE_CODES,
    ),
)
@tape_argument()
@format_option(
    ("text", "json", "markdown"),
    "text",
    "json: the documented JSON object of the summary; markdown: a compact summary for CI "
    "job pages and merge-request comments.",
)
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
        elif fmt == "markdown":
            from reports.markdown import MarkdownOptions, render_markdown

            click.echo(render_markdown(summary, MarkdownOptions(tape_name=str(tape))), nl=False)
        else:
            colour.echo(printable(text.show(summary), one_line=False), "show", nl=False)
    return ExitCode.OK
