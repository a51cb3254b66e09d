"""A flamegraph's drawable frames straight from sorted folded stacks, without the full tree.

In a flamegraph with frames in name order, the stacks under any frame are consecutive once
the stacks are sorted, so one pass over them sees every frame open (at its first stack)
and close (after its last). A frame's left edge is the running weight when it opens, its
width the running weight when it closes minus that. Frames open deeper are never wider
than the ones they sit in, so the ones too narrow to draw are a suffix of the open path,
found by bisection and dropped without being looked at: the pass costs a few C-level list
operations per stack, and a Python object only for each frame that will be drawn (22k of
3.5M in the benchmark), where the tree costs one per distinct frame.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from flame.model import Frame, StackTree

# Stacks are sorted as strings: frames joined by _SEP, ended by _END. _SEP sorts below every
# character of a name, so the order is the tree's name order frame by frame; _END sorts
# between _SEP and the rest, so a stack comes right after the stacks that extend it (a
# frame's self weight sits right of its children, as in the tree's layout). Names holding
# either character cannot be ordered this way; they take the tree path.
_SEP = "\x01"
_END = "\x02"


def _common_prefix(a: list[str], b: list[str]) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # the longest m with a[:m] == b[:m], by bisection on list slices
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def drawable_tree(
    stacks: list[tuple[list[str], float]],
    min_weight_for: Callable[[float], float],
    unit: str = "samples",
) -> tuple[StackTree, dict[int, float]] | None:
    """The tree of the frames at least ``min_weight_for(total)`` wide, with each frame's
    left edge (by ``id``) for :func:`flame.layout.place`; None when a frame name holds a
    character that the string order relies on."""
    keyed = []
    for frames, weight in stacks:
        key = _SEP.join(frames)
        if _END in key or key.count(_SEP) != len(frames) - 1:
            return None
        keyed.append((key + _END, frames, weight))
    keyed.sort(key=lambda k: k[0])
    ordered = [(frames, weight) for _, frames, weight in keyed]
    total = sum(w for _, w in stacks)
    # A hair under the limit: ``place`` applies the exact one, and must never find a
    # frame it would draw missing because two float subtractions rounded apart.
    threshold = max(min_weight_for(total) * (1 - 1e-9), 1e-300)
    starts: dict[int, float] = {}
    path: list[str] = []
    opened: list[float] = []  # running weight when each frame of ``path`` opened
    self_w: list[float] = []
    kept: list[list[Frame]] = [[]]  # drawable children of the frame at each depth (0: root)
    running = 0.0

    def close_to(depth: int) -> None:
        """Close the frames of ``path`` deeper than ``depth``, keeping the wide ones."""
        last_wide = bisect_right(opened, running - threshold, depth, len(path))
        for j in range(last_wide - 1, depth - 1, -1):
            f = Frame(path[j])
            f.total = running - opened[j]
            f.self_weight = self_w[j]
            if len(kept) > j + 2 and kept[j + 2]:
                f.children = {c.name: c for c in kept[j + 2]}
                kept[j + 2] = []
            starts[id(f)] = opened[j]
            while len(kept) <= j + 1:
                kept.append([])
            kept[j + 1].append(f)
        del path[depth:], opened[depth:], self_w[depth:]

    for frames, weight in ordered:
        k = _common_prefix(path, frames)
        if k < len(path):
            close_to(k)
        if k < len(frames):
            path.extend(frames[k:])
            opened.extend([running] * (len(frames) - k))
            self_w.extend([0.0] * (len(frames) - k))
        self_w[len(frames) - 1] += weight
        running += weight
    close_to(0)

    tree = StackTree(unit=unit)
    tree.root.total = total
    tree.root.children = {c.name: c for c in kept[1]} if len(kept) > 1 else {}
    starts[id(tree.root)] = 0.0
    return tree, starts
