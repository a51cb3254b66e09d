"""``buildtape flame``: stacks in (folded files, tapes, stdin), one format out."""

from __future__ import annotations

from pathlib import Path

import click

from buildtape.colour import say
from buildtape.exit_codes import ExitCode
from buildtape.output import write_text, wrote
from buildtape.params import TAPE_CODES, epilog, output_option, resolve_tape, tape_shortcut
from flame.errors import FoldedFormatError
from flame.folded import folded_unit
from flame.formats import FORMATS, Renderer, format_for, render
from flame.options import DIFF_MODES, ORDERS, PALETTES, FlameOptions
from flame.pipeline import FlameSources, Profile, prepare
from recorder.trust import printable


def _html_page(profile: Profile, options: FlameOptions) -> str:
    """The interactive page (canvas, search, zoom), from the other HTML pages' module."""
    from reports.render import render_flame_page

    return render_flame_page(profile.tree, options.title)


PAGES: dict[str, Renderer] = {"html": _html_page}
EXTENSIONS = ".svg, .html, .folded, .speedscope.json, .trace.json"


def _input(word: str) -> str:
    """An input as the engine reads it: ``last``/``#ID`` and ``*.tape`` name tapes (checked
    here as every command checks a tape: a directory or a non-tape is exit 3, never drawn
    from its bytes); anything else is a folded file or ``-``."""
    if word == "-":
        return word
    if tape_shortcut(word) is None and not word.endswith(".tape") and not Path(word).is_dir():
        _refuse_binary(Path(word))
        return word
    path = resolve_tape(word)
    from recorder.container import TapeReader

    with TapeReader(path, index_only=True):
        pass  # raises TapeError, one sentence, for a file that is not a tape
    return str(path)


def _refuse_binary(path: Path) -> None:
    """A file with NUL bytes is neither folded text nor a tape: say so, never draw (and
    print) frames made of its bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError:
        return  # the engine reports a missing or unreadable file in its own words
    # A tape is a zstd stream (its magic number first), however it is named.
    if b"\0" in head and not head.startswith(b"\x28\xb5\x2f\xfd"):
        raise FoldedFormatError(
            f"{path} is a binary file: neither a tape nor folded stacks (frame;frame COUNT)"
        )


EXAMPLES = [
    "buildtape flame out.folded > out.svg                 # flamegraph.pl drop-in",
    "buildtape flame ci.tape -o ci.svg",
    "buildtape flame last -o ci.html                      # canvas viewer, for big profiles",
    "buildtape flame ci.tape -o ci.speedscope.json        # open in speedscope",
    "buildtape flame ci.tape -o ci.trace.json             # open in Perfetto",
    "buildtape flame --diff before.folded after.folded -o diff.svg",
]


@click.command("flame", epilog=epilog(EXAMPLES, (*TAPE_CODES, ExitCode.BAD_INPUT)))
@click.argument("inputs", nargs=-1)
@output_option(
    f"Output file; its extension picks the format ({EXTENSIONS}). Default: SVG on stdout, "
    "like flamegraph.pl."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    metavar="FORMAT",
    help=f"Output format, whatever -o says. FORMAT: {', '.join(FORMATS)}.",
)
@click.option(
    "--diff",
    nargs=2,
    metavar="BASE NEW",
    help="Differential flamegraph: widths from NEW, colour by the change from BASE.",
)
@click.option(
    "--diff-mode",
    type=click.Choice(DIFF_MODES),
    default=FlameOptions.diff_mode,
    show_default=True,
    help="Colour by the change of each frame's total (inclusive) or self weight.",
)
@click.option("--normalize", is_flag=True, help="Differential: scale BASE to NEW's total first.")
@click.option(
    "--noise",
    type=float,
    default=FlameOptions.noise,
    show_default=True,
    help="Differential: changes below this fraction of the total stay white.",
)
@click.option("--title", default=FlameOptions.title, show_default=True)
@click.option("--subtitle", default=FlameOptions.subtitle)
@click.option(
    "--width",
    type=int,
    default=FlameOptions.width,
    show_default=True,
    help="Image width in pixels.",
)
@click.option(
    "--height",
    "frame_height",
    type=int,
    default=FlameOptions.frame_height,
    show_default=True,
    help="Height of one frame in pixels.",
)
@click.option("--fontsize", type=int, default=FlameOptions.font_size, show_default=True)
@click.option("--fonttype", default=FlameOptions.font_family, show_default=True)
@click.option(
    "--minwidth",
    type=float,
    default=FlameOptions.min_width,
    show_default=True,
    help="Leave out frames narrower than this many pixels.",
)
@click.option(
    "--colors",
    "palette",
    type=click.Choice(PALETTES),
    default=FlameOptions.palette,
    show_default=True,
)
@click.option("--countname", help="Unit shown in details (default: the input's unit).")
@click.option("--nametype", default=FlameOptions.name_type, show_default=True)
@click.option("--reverse", is_flag=True, help="Reverse every stack (leaf first) before merging.")
@click.option("--inverted", is_flag=True, help="Icicle graph: roots at the top.")
@click.option(
    "--order",
    type=click.Choice(ORDERS),
    default=FlameOptions.order,
    show_default=True,
    help="Order of sibling frames: by name, or widest first.",
)
@click.option("--no-js", is_flag=True, help="SVG without script (a <title> per frame instead).")
def flame_cmd(
    inputs: tuple[str, ...],
    output: str | None,
    fmt: str | None,
    diff: tuple[str, str] | None,
    diff_mode: str,
    normalize: bool,
    noise: float,
    title: str,
    subtitle: str,
    width: int,
    frame_height: int,
    fontsize: int,
    fonttype: str,
    minwidth: float,
    palette: str,
    countname: str | None,
    nametype: str,
    reverse: bool,
    inverted: bool,
    order: str,
    no_js: bool,
) -> ExitCode:
    """Turn stacks into a flamegraph or a profile file.

    INPUTS are folded-stack files (frame;frame;frame COUNT per line, as flamegraph.pl,
    inferno and py-spy write them), tapes (their process tree, weighted by time), or - for
    standard input. Several inputs merge. A tape can be named `last`, `last~N` or `#ID`
    (from `buildtape history`).
    """
    if diff and inputs:
        raise click.UsageError("give either INPUTS or --diff BASE NEW, not both")
    if not diff and not inputs:
        raise click.UsageError("no input: give folded files, tapes, or - for stdin")
    options = FlameOptions(
        title=title,
        subtitle=subtitle,
        width=width,
        frame_height=frame_height,
        font_size=fontsize,
        font_family=fonttype,
        min_width=minwidth,
        palette=palette,
        inverted=inverted,
        order=order,
        count_name=countname,
        name_type=nametype,
        javascript=not no_js,
        diff_mode=diff_mode,
        noise=noise,
    )
    chosen = fmt or format_for(output)
    if chosen is None and output not in (None, "-"):
        raise click.UsageError(
            f"cannot tell the format from the name {output}: end it with one of {EXTENSIONS}, "
            "or say --format"
        )
    chosen = chosen or "svg"
    if diff and chosen in ("speedscope", "trace"):
        # Both formats hold one profile: a differential would silently be NEW alone.
        raise click.UsageError(
            f"--diff has no {chosen} form (it holds one profile, not a comparison); write "
            "the differential as .svg, .html or .folded"
        )
    inputs = tuple(_input(i) for i in inputs)
    diff = (_input(diff[0]), _input(diff[1])) if diff else None
    sources = FlameSources(inputs, diff, reverse=reverse, normalize=normalize)
    profile = prepare(sources, chosen, options)
    for source, report in profile.reports:
        if report.malformed_count:
            shown = printable(report.describe(source))
            say(f"buildtape: warning: {shown}")
    for note in profile.tree.notes:
        say(f"buildtape: note: {printable(note)}")
    if chosen == "folded" and profile.tree.unit != "samples":
        say(f"buildtape: note: folded counts are in {folded_unit(profile.tree)}")
    out = render(chosen, profile, options, PAGES)
    write_text(output, out)
    wrote(output, out)
    return ExitCode.OK
