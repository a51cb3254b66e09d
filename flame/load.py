"""Inputs for ``buildtape flame``: folded files, standard input or tapes; several merge.

Thin layers, as inferno has them: paths -> readers -> lines. Only ``read_lines`` in
``flame.folded`` parses anything.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flame.drawable import drawable_tree, keyed_stacks
from flame.errors import FoldedFormatError
from flame.folded import FoldedReport, read_lines
from flame.layout import Placed
from flame.model import StackTree

if TYPE_CHECKING:
    from flame.from_tape import Span

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass
class Loaded:
    tree: StackTree
    spans: list[Span] | None = None
    reports: list[tuple[str, FoldedReport]] = field(default_factory=list)


def _is_tape(path: str) -> bool:
    if path == "-":
        return False
    try:
        with open(path, "rb") as f:
            return f.read(4) == _ZSTD_MAGIC
    except OSError:
        return False


def _lines(path: str) -> Iterable[str]:
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    try:
        return open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise FileNotFoundError(2, "no such file", path) from None


def _require_stacks(path: str, report: FoldedReport) -> None:
    if report.stacks == 0:
        detail = f"; {report.describe(path)}" if report.malformed_count else ""
        raise FoldedFormatError(f"{path} holds no folded stacks{detail}")


def all_folded(paths: list[str]) -> bool:
    return not any(_is_tape(p) for p in paths)


def load_drawable(
    paths: list[str], reverse: bool, min_weight_for: Callable[[float], float]
) -> tuple[Loaded, list[Placed] | None]:
    """Folded inputs straight to the frames wide enough to draw (``flame.drawable``), for an
    SVG in name order: the fast path for big profiles. Tapes go through ``load``, and so
    does input the fast path cannot order (then the placed frames are None)."""
    keyed: list[tuple[str, float]] = []
    reports = []
    stdin: str | None = None  # kept: the tree path may need it again
    for path in paths:
        lines = _lines(path)
        # One string per input: split, checked and parsed at C speed.
        text = lines.read() if isinstance(lines, io.TextIOBase) else "".join(lines)
        if path == "-":
            stdin = text
        elif isinstance(lines, io.TextIOBase):
            lines.close()
        report = FoldedReport()
        got = keyed_stacks(text, report, reverse)
        if got is None:
            return _tree_from_folded(paths, reverse, stdin), None
        _require_stacks(path, report)
        keyed += got
        reports.append((path, report))
    tree, placed = drawable_tree(keyed, min_weight_for)
    return Loaded(tree, None, reports), placed


def _tree_from_folded(paths: list[str], reverse: bool, stdin: str | None) -> Loaded:
    out = Loaded(StackTree())
    for path in paths:
        lines = (stdin or "").splitlines(keepends=True) if path == "-" else _lines(path)
        report = read_lines(lines, out.tree, reverse=reverse)
        if isinstance(lines, io.TextIOBase):
            lines.close()
        _require_stacks(path, report)
        out.reports.append((path, report))
    return out


def load(paths: list[str], reverse: bool = False, base: StackTree | None = None) -> Loaded:
    """Merge every input into one tree (into ``base``'s base weights when given)."""
    tree = base or StackTree()
    out = Loaded(tree)
    for path in paths:
        if _is_tape(path):
            # The tape reader and the process model load only for tapes.
            from flame.from_tape import Samples, process_spans, process_stacks
            from recorder.tape import open_tape

            with open_tape(Path(path)) as tape:
                digest = tape.manifest.sampling.samples_blob
                samples = Samples.from_json(tape.blob(digest)) if digest else None
                stacks = process_stacks(tape.manifest, samples)
                if out.spans is None and base is None:
                    out.spans = process_spans(tape.manifest)
            tree.unit = stacks.unit
            tree.title = tree.title or stacks.title
            tree.notes += stacks.notes
            for stack, weight in stacks.stacks():
                stack = stack[::-1] if reverse else stack
                if base is not None:
                    tree.add_base(stack, weight)
                else:
                    tree.add(stack, weight)
            continue
        lines = _lines(path)
        report = read_lines(lines, tree, base=base is not None, reverse=reverse)
        if isinstance(lines, io.TextIOBase) and path != "-":
            lines.close()
        _require_stacks(path, report)
        out.reports.append((path, report))
    return out
