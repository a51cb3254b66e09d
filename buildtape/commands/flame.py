"""``buildtape flame``: stacks in (folded files, tapes, stdin), one format out."""

from __future__ import annotations

import click

from buildtape.exit_codes import ExitCode
from buildtape.output import write_text
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


@click.command("flame")
@click.argument("inputs", nargs=-1)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Output file; its extension picks the format (.svg, .html, .folded, "
    ".speedscope.json, .trace.json). Default: SVG on stdout, like flamegraph.pl.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), help="Output format, whatever -o says."
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
    standard input. Several inputs merge.

    \b
    Examples:
      buildtape flame out.folded > out.svg                 # flamegraph.pl drop-in
      buildtape flame ci.tape -o ci.svg
      buildtape flame ci.tape -o ci.html                   # canvas viewer, for big profiles
      buildtape flame ci.tape -o ci.speedscope.json        # open in speedscope
      buildtape flame ci.tape -o ci.trace.json             # open in Perfetto
      buildtape flame --diff before.folded after.folded -o diff.svg
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
    chosen = fmt or format_for(output) or "svg"
    sources = FlameSources(inputs, diff, reverse=reverse, normalize=normalize)
    profile = prepare(sources, chosen, options)
    for source, report in profile.reports:
        if report.malformed_count:
            click.echo(f"buildtape: warning: {report.describe(source)}", err=True)
    for note in profile.tree.notes:
        click.echo(f"buildtape: note: {printable(note)}", err=True)
    if chosen == "folded" and profile.tree.unit != "samples":
        click.echo(f"buildtape: note: folded counts are in {folded_unit(profile.tree)}", err=True)
    write_text(output, render(chosen, profile, options, PAGES))
    return ExitCode.OK
