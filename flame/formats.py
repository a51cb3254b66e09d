"""Which writer makes which file: picked by ``--format`` or by the output's extension.

Every renderer has one signature, ``(Profile, FlameOptions) -> str``. The HTML page is a
format whose renderer lives with the other pages (``reports``): the command line adds it
to these, so ``flame`` never imports ``reports``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flame.folded import folded_text
from flame.options import FlameOptions
from flame.pipeline import Profile
from flame.svg import render_svg

Renderer = Callable[[Profile, FlameOptions], str]

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


def _svg(p: Profile, options: FlameOptions) -> str:
    return render_svg(p.tree, options, p.placed)


def _folded(p: Profile, options: FlameOptions) -> str:
    return folded_text(p.tree)


# Each writer below loads only when asked for: start-up is part of every render.
def _speedscope(p: Profile, options: FlameOptions) -> str:
    from flame.speedscope import render_speedscope

    return render_speedscope(p.tree, p.spans, options.title)


def _trace(p: Profile, options: FlameOptions) -> str:
    from flame.chrome import render_chrome_trace

    return render_chrome_trace(p.tree, p.spans)


RENDERERS: Mapping[str, Renderer] = {
    "svg": _svg,
    "folded": _folded,
    "speedscope": _speedscope,
    "trace": _trace,
}


def render(
    fmt: str, profile: Profile, options: FlameOptions, more: Mapping[str, Renderer] | None = None
) -> str:
    """The profile in format ``fmt``, by this module's renderers or ``more``."""
    renderer = {**RENDERERS, **(more or {})}.get(fmt)
    if renderer is None:
        raise ValueError(f"no renderer for the flame format {fmt!r}")
    return renderer(profile, options)
