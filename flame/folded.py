"""Folded stacks in and out: ``frame;frame;frame COUNT`` per line.

Reads what flamegraph.pl's stackcollapse scripts, inferno and ``py-spy --format raw``
write: the count is the last space-separated field (integer or decimal), ``#`` lines
and blank lines are skipped, and a malformed line is counted and reported with its line
number instead of stopping the read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from flame.model import StackTree

MAX_REPORTED = 20


@dataclass
class FoldedReport:
    """What a read saw: line and stack counts, and the malformed lines (first 20 kept)."""

    lines: int = 0
    stacks: int = 0
    malformed_count: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)

    def describe(self, source: str) -> str:
        shown = ", ".join(f"line {n} ({why})" for n, why in self.malformed[:3])
        more = "" if self.malformed_count <= 3 else f" and {self.malformed_count - 3} more"
        return f"{source}: {self.malformed_count} malformed lines skipped: {shown}{more}"


def parse_line(line: str) -> tuple[list[str], float] | str:
    """A stack and its weight, or the reason the line is malformed."""
    text = line.rstrip("\r\n")
    head, sep, count = text.rstrip().rpartition(" ")
    if not sep:
        return "no count after the stack"
    try:
        weight = float(count)
    except ValueError:
        return f"count {count[:20]!r} is not a number"
    if not math.isfinite(weight) or weight < 0:
        return f"count {count[:20]!r} is not a non-negative number"
    frames = head.strip().split(";")
    if not any(frames):
        return "empty stack"
    return frames, weight


def parsed_stacks(
    lines: Iterable[str], report: FoldedReport, reverse: bool = False
) -> Iterator[tuple[list[str], float]]:
    """Every well-formed stack with its weight (leaf first when ``reverse``); blank and
    ``#`` lines skipped, malformed ones counted in ``report`` with their line numbers."""
    for lineno, line in enumerate(lines, start=1):
        report.lines += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parsed = parse_line(line)
        if isinstance(parsed, str):
            report.malformed_count += 1
            if len(report.malformed) < MAX_REPORTED:
                report.malformed.append((lineno, parsed))
            continue
        stack, weight = parsed
        report.stacks += 1
        yield (stack[::-1] if reverse else stack), weight


def read_lines(
    lines: Iterable[str],
    tree: StackTree,
    base: bool = False,
    report: FoldedReport | None = None,
    reverse: bool = False,
) -> FoldedReport:
    """Add every stack in ``lines`` to ``tree`` (as base weights when ``base``; leaf first
    when ``reverse``), in one streaming pass."""
    report = report or FoldedReport()
    add = tree.add_base if base else tree.add
    for stack, weight in parsed_stacks(lines, report, reverse):
        add(stack, weight)
    return report


def _count(weight: float, scale: float) -> int:
    count = round(weight * scale)
    return 1 if count == 0 and weight > 0 else count


def folded_text(tree: StackTree) -> str:
    """Folded lines in sorted stack order with integer counts.

    Time in microseconds is written in whole milliseconds (a non-zero stack never rounds
    to 0): tools that read folded counts as samples (the Firefox Profiler, Perfetto)
    would otherwise create millions of samples. A differential tree writes two counts,
    BASE then NEW, as ``difffolded.pl`` does (``flamegraph.pl`` reads them): a stack only
    in one profile has 0 in the other.
    """
    scale = 0.001 if tree.unit == "microseconds" else 1.0
    if tree.differential:
        return "".join(
            f"{';'.join(stack)} {_count(base, scale)} {_count(new, scale)}\n"
            for stack, base, new in tree.stack_pairs()
        )
    return "".join(f"{';'.join(stack)} {_count(w, scale)}\n" for stack, w in tree.stacks())


def folded_unit(tree: StackTree) -> str:
    return "milliseconds" if tree.unit == "microseconds" else tree.unit
