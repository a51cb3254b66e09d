"""Where each frame goes: depth, start and width in weight units, for any drawing format.

Widths come from NEW's weights. In a differential tree a frame present only in the base
(a *ghost*) takes its base weight, and its ancestors widen by that much, so it can be
drawn instead of vanishing; every other frame keeps its exact width.
"""

from __future__ import annotations

from dataclasses import dataclass

from flame.model import Frame, StackTree


@dataclass(frozen=True)
class Placed:
    frame: Frame
    depth: int
    start: float
    width: float
    # The index of the parent in the placed list (-1 for the root).
    parent: int


def _layout_weights(root: Frame) -> dict[int, float]:
    """Width of every frame, by id(frame): total plus the base weight of ghost descendants."""
    out: dict[int, float] = {}
    order: list[Frame] = []
    todo = [root]
    while todo:
        node = todo.pop()
        order.append(node)
        todo.extend(node.children.values())
    for node in reversed(order):  # children before parents
        if node.is_ghost:
            out[id(node)] = node.base_total
            continue
        ghosts = 0.0
        for child in node.children.values():
            ghosts += out[id(child)] - (0.0 if child.is_ghost else child.total)
        out[id(node)] = node.total + ghosts
    return out


def root_width(tree: StackTree) -> float:
    """The width of the whole graph in weight units (ghosts included)."""
    if not tree.differential:
        return tree.root.total
    return _layout_weights(tree.root)[id(tree.root)]


def place(tree: StackTree, order: str = "alpha", min_weight: float = 0.0) -> list[Placed]:
    """Frames in drawing order (parents before children); narrower than ``min_weight`` left out.

    Only frames that are drawn are visited, so a huge profile costs what its picture shows.
    """
    if tree.differential:
        ghost_widths = _layout_weights(tree.root)

        def width_of(f: Frame) -> float:
            return ghost_widths[id(f)]
    else:

        def width_of(f: Frame) -> float:
            return f.total

    placed: list[Placed] = [Placed(tree.root, 0, 0.0, width_of(tree.root), -1)]
    stack = [0]
    while stack:
        index = stack.pop()
        parent = placed[index]
        children = list(parent.frame.children.values())
        if order == "widest":
            children.sort(key=lambda c: (-width_of(c), c.name))
        else:
            children.sort(key=lambda c: c.name)
        x = parent.start
        firsts = []
        for child in children:
            w = width_of(child)
            if w > 0 and w >= min_weight:
                placed.append(Placed(child, parent.depth + 1, x, w, index))
                firsts.append(len(placed) - 1)
            x += w
        stack.extend(reversed(firsts))
    return placed
