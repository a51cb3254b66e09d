"""A flamegraph's drawable frames straight from folded text, without the full tree.

Sorted, the stacks under any frame are consecutive, and in the order the flamegraph lays
frames out. So with the stacks sorted once (in C) and a running sum of their weights, a
frame over stacks [lo, hi) is sum[hi] - sum[lo] wide, and each child's range is found by
bisection on the sorted stacks. A walk from the root visits only the frames wide enough
to draw and their immediate siblings (49k of 3.5M distinct frames in the benchmark, where
the full tree builds an object for each), jumping over every narrow frame's whole
subtree in one bisection.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import accumulate, repeat

from flame.folded import FoldedReport, parsed_stacks
from flame.layout import Placed
from flame.model import Frame, StackTree

# Stacks are sorted as strings with their frames joined by _SEP, which sorts below every
# character of a name, so the order is the tree's name order frame by frame. Input holding
# _SEP, _AFTER or NUL (which would sort below them) takes the tree path.
_SEP = "\x01"
# Sorts right after the separator: the end of the stacks under one frame name.
_AFTER = "\x02"


def keyed_stacks(
    text: str, report: FoldedReport, reverse: bool = False
) -> list[tuple[str, float]] | None:
    """(sort key, weight) of every well-formed line of ``text``, counted and reported as
    ``flame.folded.read_lines`` does; None if the text holds a character the keys use.

    Input made only of clean lines (a stack with a frame name at either end, one space, a
    count) is parsed by C-level passes over all lines at once; anything else (comments,
    blank or malformed lines, ``--reverse``) goes line by line, as the tree path does.
    """
    if _SEP in text or _AFTER in text or "\x00" in text:
        return None
    lines = text.replace(";", _SEP).split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line starts no line
    if not reverse and lines:
        heads, seps, counts = zip(*map(str.rpartition, lines, repeat(" ")), strict=True)
        try:
            weights = list(map(float, counts))
        except ValueError:
            weights = []
        clean = (
            len(weights) == len(lines)
            and "" not in seps
            and "" not in heads
            and all(map((0.0).__le__, weights))  # also false for NaN
            and math.inf not in weights
            and not any(map(str.startswith, heads, repeat(("#", _SEP))))
            and not any(map(str.endswith, heads, repeat(_SEP)))
            and list(map(str.strip, heads)) == list(heads)
        )
        if clean:
            report.lines += len(lines)
            report.stacks += len(lines)
            return list(zip(heads, weights, strict=True))
    return _keyed_lines(text, report, reverse)


def _keyed_lines(text: str, report: FoldedReport, reverse: bool) -> list[tuple[str, float]]:
    """The same, line by line (comments, blank or malformed lines, ``--reverse``)."""
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line starts no line
    return [(_SEP.join(f), w) for f, w in parsed_stacks(lines, report, reverse)]


def drawable_tree(
    keyed: list[tuple[str, float]], min_weight_for: Callable[[float], float]
) -> tuple[StackTree, list[Placed]]:
    """The tree of the frames at least ``min_weight_for(total)`` wide, and those frames
    placed as :func:`flame.layout.place` would place them, in the same order."""
    unsorted = [k for k, _ in keyed]
    # Sorting indexes by key beats sorting (key, weight) tuples: no tuple compares.
    order = sorted(range(len(unsorted)), key=unsorted.__getitem__)
    keys = list(map(unsorted.__getitem__, order))
    # cum[i]: the weight of the stacks before the i-th, so stacks [lo, hi) weigh
    # cum[hi] - cum[lo].
    cum = list(accumulate(map([w for _, w in keyed].__getitem__, order), initial=0.0))
    total = cum[-1]
    threshold = min_weight_for(total)
    tree = StackTree()
    tree.root.total = total
    placed = [Placed(tree.root, 0, 0.0, total, -1)]
    # Walked as ``place`` walks: a frame's children are placed together, then the first
    # child's subtree is expanded. Per frame: its index in ``placed``, its key prefix for
    # its children, and their stacks [lo, hi). A frame's own stacks (its self weight) sort
    # before its children's; the children are drawn from its left edge.
    todo: list[tuple[int, str, int, int]] = [(0, "", 0, len(keys))]
    while todo:
        index, prefix, lo, hi = todo.pop()
        parent = placed[index]
        cut = len(prefix)
        children: dict[str, Frame] = {}
        expand: list[tuple[int, str, int, int]] = []
        i = lo
        while i < hi:
            key = keys[i]
            # Every key here names a child: up to the next separator, or the whole key.
            end = key.find(_SEP, cut)
            stem = key if end < 0 else key[:end]
            # The child's stacks: its own (== stem), then those under it (stem + _SEP).
            j = bisect_left(keys, stem + _AFTER, i, hi)
            width = cum[j] - cum[i]
            if width > 0 and width >= threshold:
                f = Frame(stem[cut:])
                f.total = width
                own = bisect_right(keys, stem, i, j)
                f.self_weight = cum[own] - cum[i]
                children[f.name] = f
                placed.append(Placed(f, parent.depth + 1, parent.start + cum[i] - cum[lo],
                                     width, index))  # fmt: skip
                expand.append((len(placed) - 1, stem + _SEP, own, j))
            i = j
        if children:
            parent.frame.children = children
        todo += reversed(expand)
    return tree, placed
