"""From inputs to what a renderer draws: the decisions ``buildtape flame`` makes.

A differential graph loads BASE and NEW and compares them. An SVG in name order of folded
inputs takes the fast path: only the frames wide enough to draw are built, already laid
out (``flame.drawable``). A viewer that zooms (the HTML page) keeps the frames that are
wide enough at its deepest zoom, and lays them out itself. Everything else loads the whole
tree (tapes also give their process spans, for the timeline formats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flame.folded import FoldedReport
from flame.layout import Placed
from flame.load import all_folded, load, load_drawable
from flame.model import StackTree, differential
from flame.options import FlameOptions
from flame.svg import min_weight

if TYPE_CHECKING:
    from flame.from_tape import Span

# Formats whose viewer zooms in, and how far: frames narrower than --minwidth at this zoom
# are left out.
ZOOM = {"html": 10.0}
# Formats drawn from laid-out frames: the fast path applies to these (in name order).
_DRAWN = frozenset({"svg", "html"})


@dataclass(frozen=True)
class FlameSources:
    """What to draw: folded files, tapes or ``-``, merged; or a BASE and NEW to compare."""

    inputs: tuple[str, ...] = ()
    # Differential: (BASE, NEW); widths from NEW, colour by the change from BASE.
    diff: tuple[str, str] | None = None
    # Reverse every stack (leaf first) before merging.
    reverse: bool = False
    # Differential: scale BASE to NEW's total first.
    normalize: bool = False


@dataclass
class Profile:
    """What every renderer takes: the tree, and what some formats also use."""

    tree: StackTree
    # Process spans of a tape (the timeline formats draw them); None for folded input.
    spans: list[Span] | None = None
    # Frames already laid out by the fast path, for the SVG; None: the renderer lays out.
    placed: list[Placed] | None = None
    # (input, what was wrong with some of its lines), for warnings.
    reports: list[tuple[str, FoldedReport]] = field(default_factory=list)


def prepare(sources: FlameSources, fmt: str, options: FlameOptions) -> Profile:
    """Load the sources the way the format ``fmt`` needs them."""
    if sources.diff:
        new = load([sources.diff[1]], reverse=sources.reverse)
        base = load([sources.diff[0]], reverse=sources.reverse)
        tree = differential(base.tree, new.tree, normalize=sources.normalize)
        tree.notes += base.tree.notes + new.tree.notes
        return Profile(tree, reports=base.reports + new.reports)
    paths = list(sources.inputs)
    if fmt in _DRAWN and options.order == "alpha" and all_folded(paths):
        zoom = ZOOM.get(fmt, 1.0)
        loaded, placed = load_drawable(
            paths, sources.reverse, lambda total: min_weight(total, options) / zoom
        )
        # A zooming viewer lays frames out itself.
        return Profile(loaded.tree, None, None if fmt in ZOOM else placed, loaded.reports)
    loaded = load(paths, reverse=sources.reverse)
    return Profile(loaded.tree, loaded.spans, None, loaded.reports)
