"""The stack tree: weighted stacks merged into frames with self and total weights.

It knows no input or output format. Readers (``folded``, ``from_tape``) add stacks;
writers (``svg``, ``speedscope``, ``chrome``, ``folded``) walk it. A tree can also hold
a second set of weights, from a base profile, for differential flamegraphs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

UNITS = ("samples", "microseconds", "bytes")


class Frame:
    """One node of the tree. Slots and a lazily created children dict keep a tree of
    millions of frames (a big profile) in a few hundred bytes per frame."""

    __slots__ = ("base_self", "base_total", "children", "name", "self_weight", "total")

    def __init__(self, name: str) -> None:
        self.name = name
        self.total = 0.0
        self.self_weight = 0.0
        # Weights in the base profile of a differential tree (zero otherwise).
        self.base_total = 0.0
        self.base_self = 0.0
        self.children: dict[str, Frame] = _NO_CHILDREN

    def child(self, name: str) -> Frame:
        children = self.children
        node = children.get(name)
        if node is None:
            if children is _NO_CHILDREN:
                children = self.children = {}
            node = children[name] = Frame(name)
        return node

    @property
    def is_ghost(self) -> bool:
        """Present only in the base profile."""
        return self.total == 0 and self.base_total > 0

    def __repr__(self) -> str:
        return f"Frame({self.name!r}, total={self.total}, self={self.self_weight})"


# Shared by every leaf until it gets a child; never written to.
_NO_CHILDREN: dict[str, Frame] = {}


@dataclass
class StackTree:
    """Merged stacks. ``root`` is a synthetic frame named ``all``."""

    unit: str = "samples"
    title: str = ""
    source: str = ""
    root: Frame = field(default_factory=lambda: Frame("all"))
    differential: bool = False
    # What a reader could not draw exactly, in words (a tape's spans too many to match).
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.root.total

    def add(self, stack: Sequence[str], weight: float) -> None:
        """Add one stack (outermost frame first) with its weight."""
        node = self.root
        node.total += weight
        for name in stack:
            children = node.children
            nxt = children.get(name)
            if nxt is None:
                nxt = node.child(name)
            node = nxt
            node.total += weight
        node.self_weight += weight

    def add_base(self, stack: Sequence[str], weight: float) -> None:
        """Add a stack of the base profile of a differential tree."""
        self.differential = True
        node = self.root
        node.base_total += weight
        for name in stack:
            node = node.child(name)
            node.base_total += weight
        node.base_self += weight

    def stacks(self) -> Iterator[tuple[list[str], float]]:
        """Every stack with a self weight, depth first, children in name order.

        Iterative, so stacks deeper than Python's recursion limit (deep recursion in the
        profiled program) are fine.
        """
        for path, node in self._walk():
            if node.self_weight:
                yield path, node.self_weight

    def stack_pairs(self) -> Iterator[tuple[list[str], float, float]]:
        """Every stack with a self weight in the base or the new profile, as
        (stack, base self weight, self weight), in the order of ``stacks``."""
        for path, node in self._walk():
            if node.self_weight or node.base_self:
                yield path, node.base_self, node.self_weight

    def _walk(self) -> Iterator[tuple[list[str], Frame]]:
        # (node, its depth); ``path`` holds the names down to the node being visited.
        todo = [(self.root.children[n], 1) for n in sorted(self.root.children, reverse=True)]
        path: list[str] = []
        while todo:
            node, depth = todo.pop()
            del path[depth - 1 :]
            path.append(node.name)
            yield list(path), node
            for name in sorted(node.children, reverse=True):
                todo.append((node.children[name], depth + 1))


def differential(base: StackTree, new: StackTree, normalize: bool = False) -> StackTree:
    """NEW's weights with BASE's as base weights; ``normalize`` scales BASE to NEW's total."""
    out = StackTree(unit=new.unit, title=new.title, source=new.source, differential=True)
    for stack, weight in new.stacks():
        out.add(stack, weight)
    factor = new.total / base.total if normalize and base.total else 1.0
    for stack, weight in base.stacks():
        out.add_base(stack, weight * factor)
    return out
