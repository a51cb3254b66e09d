"""The units every command prints in: one way to write a size, a duration, a rate and a
command line."""

from __future__ import annotations

import shlex

from recorder.units import human_size

__all__ = ["human_size", "percent", "seconds", "short_argv"]


def seconds(x: float | None, digits: int = 2) -> str:
    """A duration as ``1.23s`` (``-`` when unknown)."""
    return "-" if x is None else f"{x:.{digits}f}s"


def percent(x: float | None) -> str:
    """A rate (0..1) as ``87.5%`` (``-`` when unknown)."""
    return "-" if x is None else f"{100 * x:.1f}%"


def short_argv(argv: list[str], width: int = 80) -> str:
    """A command line as a shell would quote it, cut to ``width`` with an ellipsis."""
    text = shlex.join(argv) if argv else "?"
    return text if len(text) <= width else text[: width - 1] + "…"
