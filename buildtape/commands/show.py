"""``buildtape show``: what a tape holds, for people, as the documented JSON, or as a
Markdown summary for CI (``$GITHUB_STEP_SUMMARY``, merge-request comments)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.text import tape as text
from recorder.summary import summarise
from recorder.tape import open_tape
from recorder.trust import json_safe, printable


@click.command("show")
@click.argument("tape", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="json: the documented object (docs/cli.md); markdown: a compact summary for CI "
    "(docs/ci.md).",
)
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --format json.")
def show_cmd(tape: Path, fmt: str, as_json: bool) -> ExitCode:
    """Summarise a tape: command, status, host, slowest and failing steps, outputs, warnings.

    \b
    Examples:
      buildtape show ci.tape
      buildtape show ci.tape --format markdown >> "$GITHUB_STEP_SUMMARY"
    """
    with open_tape(tape) as t:
        summary = summarise(t)
        if as_json or fmt == "json":
            out = json.dumps(summary.to_json(), indent=2, sort_keys=True, ensure_ascii=False)
            click.echo(json_safe(out))
        elif fmt == "markdown":
            from reports.markdown import MarkdownOptions, render_markdown

            click.echo(render_markdown(summary, MarkdownOptions(tape_name=str(tape))), nl=False)
        else:
            click.echo(printable(text.show(summary), one_line=False), nl=False)
    return ExitCode.OK
