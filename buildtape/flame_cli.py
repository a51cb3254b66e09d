"""``buildtape flame``: stacks in (folded files, tapes, stdin), one format out."""

from __future__ import annotations

import click

from buildtape.output import write_text
from flame.folded import folded_unit
from flame.formats import FORMATS, format_for, render
from flame.load import all_folded, load, load_drawable
from flame.model import differential
from flame.options import DIFF_MODES, ORDERS, PALETTES, FlameOptions
from flame.svg import min_weight, render_svg


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
    default="total",
    show_default=True,
    help="Colour by the change of each frame's total (inclusive) or self weight.",
)
@click.option("--normalize", is_flag=True, help="Differential: scale BASE to NEW's total first.")
@click.option(
    "--noise",
    type=float,
    default=0.001,
    show_default=True,
    help="Differential: changes below this fraction of the total stay white.",
)
@click.option("--title", default="Flame Graph", show_default=True)
@click.option("--subtitle", default="")
@click.option("--width", type=int, default=1200, show_default=True, help="Image width in pixels.")
@click.option(
    "--height",
    "frame_height",
    type=int,
    default=16,
    show_default=True,
    help="Height of one frame in pixels.",
)
@click.option("--fontsize", type=int, default=12, show_default=True)
@click.option("--fonttype", default="Verdana, sans-serif", show_default=True)
@click.option(
    "--minwidth",
    type=float,
    default=0.1,
    show_default=True,
    help="Leave out frames narrower than this many pixels.",
)
@click.option("--colors", "palette", type=click.Choice(PALETTES), default="hot", show_default=True)
@click.option("--countname", help="Unit shown in details (default: the input's unit).")
@click.option("--nametype", default="Function:", show_default=True)
@click.option("--reverse", is_flag=True, help="Reverse every stack (leaf first) before merging.")
@click.option("--inverted", is_flag=True, help="Icicle graph: roots at the top.")
@click.option(
    "--order",
    type=click.Choice(ORDERS),
    default="alpha",
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
) -> None:
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
    placed = None
    if diff:
        new = load([diff[1]], reverse=reverse)
        base = load([diff[0]], reverse=reverse)
        tree = differential(base.tree, new.tree, normalize=normalize)
        reports = base.reports + new.reports
        spans = None
    elif chosen in ("svg", "html") and order == "alpha" and all_folded(list(inputs)):
        # Only the frames wide enough to draw are built: the fast path for big profiles.
        # The HTML viewer zooms, so it keeps frames --minwidth wide at 10x zoom.
        zoom = 10.0 if chosen == "html" else 1.0
        loaded, placed = load_drawable(
            list(inputs), reverse, lambda total: min_weight(total, options) / zoom
        )
        tree, spans, reports = loaded.tree, None, loaded.reports
        if chosen == "html":
            placed = None  # the page lays frames out itself
    else:
        loaded = load(list(inputs), reverse=reverse)
        tree, spans, reports = loaded.tree, loaded.spans, loaded.reports
    for source, report in reports:
        if report.malformed_count:
            click.echo(f"buildtape: warning: {report.describe(source)}", err=True)
    if chosen == "folded" and tree.unit != "samples":
        click.echo(f"buildtape: note: folded counts are in {folded_unit(tree)}", err=True)
    if placed is not None:
        write_text(output, render_svg(tree, options, placed))
    else:
        write_text(output, render(chosen, tree, spans, options))
