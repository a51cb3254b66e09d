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


_C_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}


def shell_quote(arg: str) -> str:
    """One argument as a shell reads it back, always on one line: an argument with a
    newline or another control character is written ``$'a\\nb'`` (bash, zsh, ksh)."""
    if not any(ord(c) < 0x20 or ord(c) == 0x7F for c in arg):
        return shlex.quote(arg)
    out = []
    for c in arg:
        if c in _C_ESCAPES:
            out.append(_C_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return "$'" + "".join(out) + "'"


def shell_line(argv: list[str]) -> str:
    """A command line as a shell would quote it, on one line."""
    return " ".join(shell_quote(a) for a in argv)


def short_argv(argv: list[str], width: int = 80) -> str:
    """A command line as a shell would quote it, on one line, cut to ``width`` with an
    ellipsis."""
    text = shell_line(argv) if argv else "?"
    return text if len(text) <= width else text[: width - 1] + "…"
