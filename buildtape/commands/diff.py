"""``buildtape diff``: why two builds differ."""

from __future__ import annotations

import json
from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.output import write_text, wrote
from buildtape.params import TAPE_CODES, epilog, format_option, output_option, tape_argument
from buildtape.text import diff as text
from recorder.tape import open_tape
from recorder.trust import printable
from replay.diff import DiffOptions, diff

EXAMPLES = [
    "buildtape diff good.tape bad.tape",
    "buildtape diff last~1 last",
    "buildtape diff good.tape bad.tape --format html -o diff.html",
]


@click.command("diff", epilog=epilog(EXAMPLES, (*TAPE_CODES, ExitCode.DIFFERENT)))
@tape_argument("tape_a")
@tape_argument("tape_b")
@format_option(
    ("text", "json", "html"),
    "text",
    "html: one self-contained page, with a differential flamegraph of process time.",
)
@output_option("Write the report to FILE instead of stdout.")
@click.option(
    "--no-normalize",
    is_flag=True,
    help="Compare argv and streams as recorded: keep workspace paths, temp names, "
    "pids and timestamps.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also hand each pair of differing outputs to diffoscope (when installed).",
)
def diff_cmd(
    tape_a: Path, tape_b: Path, fmt: str, output: str | None, no_normalize: bool, deep: bool
) -> ExitCode:
    """Explain why two builds differ: verdict and likely cause first.

    \b
    Sections: command and status, environment, toolchain, inputs, steps (matched across
    the tapes, with argument-level changes), outputs (text diffs, archive members, first
    differing byte), timings, streams. Same two tapes, same bytes out. With --format html
    (and -o diff.html), one page with all of it and a differential flamegraph.
    Exit 0: equivalent; 1: different.
    """
    with open_tape(tape_a) as a, open_tape(tape_b) as b:
        report = diff(a, b, DiffOptions(normalize=not no_normalize, deep=deep))
        if fmt == "html":
            from reports.render import render_tapes_diff_page

            page = render_tapes_diff_page(a, b, report.to_json(), (tape_a.name, tape_b.name))
    if fmt == "html":
        out = page
    elif fmt == "json":
        out = json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n"
    else:
        out = printable(text.render(report), one_line=False)
    write_text(output, out)
    wrote(output, out)
    return ExitCode.OK if report.equivalent else ExitCode.DIFFERENT
