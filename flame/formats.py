"""Which writer makes which file: picked by ``--format`` or by the output's extension."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flame.folded import folded_text
from flame.model import StackTree
from flame.options import FlameOptions
from flame.svg import render_svg

if TYPE_CHECKING:
    from flame.from_tape import Span

FORMATS = ("svg", "folded", "speedscope", "trace", "html")
_EXTENSIONS = (
    (".html", "html"),
    (".htm", "html"),
    (".speedscope.json", "speedscope"),
    (".trace.json", "trace"),
    (".folded", "folded"),
    (".svg", "svg"),
)


def format_for(path: str | None) -> str | None:
    """The format an output name asks for, or None when its extension says nothing."""
    if path is None or path == "-":
        return None
    lower = path.lower()
    return next((fmt for ext, fmt in _EXTENSIONS if lower.endswith(ext)), None)


def render(fmt: str, tree: StackTree, spans: list[Span] | None, options: FlameOptions) -> str:
    if fmt == "svg":
        return render_svg(tree, options)
    if fmt == "folded":
        return folded_text(tree)
    # Each writer loads only when asked for: start-up is part of every render.
    if fmt == "speedscope":
        from flame.speedscope import render_speedscope

        return render_speedscope(tree, spans, options.title)
    if fmt == "trace":
        from flame.chrome import render_chrome_trace

        return render_chrome_trace(tree, spans)
    if fmt == "html":
        # The interactive page (canvas, search, zoom) lives with the other HTML pages.
        from reports.render import render_flame_page

        return render_flame_page(tree, options.title)
    raise ValueError(f"unknown flame format {fmt!r}")
