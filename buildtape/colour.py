"""Colour for buildtape's own words on a terminal: statuses, verdicts, error and warning
prefixes.

Colour is used only when the stream is a terminal, ``NO_COLOR`` is unset or empty
(https://no-color.org) and ``TERM`` is not ``dumb``. It is applied to finished text,
after ``printable`` has made every control character from a tape visible: the only escape
sequences that reach the terminal are the ones made here, around words of buildtape's own
layout (a line's fixed prefix, a table column), never around a tape's bytes.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

import click

_STYLES: dict[str, dict[str, bool | str]] = {
    "ok": {"fg": "green"},
    "bad": {"fg": "red", "bold": True},
    "warn": {"fg": "yellow"},
    "note": {"fg": "cyan"},
    "head": {"bold": True},
}
_STATUS = {"succeeded": "ok", "failed": "bad", "interrupted": "warn"}
_PREFIXES = {"error": "bad", "warning": "warn", "note": "note", "check failed": "bad"}


def enabled(err: bool = False) -> bool:
    """Whether output to stdout (stderr with ``err``) may be coloured."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    stream = sys.stderr if err else sys.stdout
    return stream.isatty()


def paint(text: str, role: str) -> str:
    """``text`` in the colour of ``role`` (ok, bad, warn, note, head)."""
    return click.style(text, **_STYLES[role])  # type: ignore[arg-type]


def _sub(pattern: str, role_of: Callable[[re.Match[str]], str | None]) -> Callable[[str], str]:
    """A painter for the group ``word`` of ``pattern`` (multi-line), by its role."""
    regex = re.compile(pattern, re.M)

    def apply(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            role = role_of(m)
            if role is None:
                return m.group(0)
            start, end = m.span("word")
            s0 = m.start()
            whole = m.group(0)
            return whole[: start - s0] + paint(m.group("word"), role) + whole[end - s0 :]

        return regex.sub(one, text)

    return apply


def _status_role(m: re.Match[str]) -> str | None:
    return _STATUS.get(m.group("word"))


# `show`: the status line and the section headings.
_show_status = _sub(r"^  status    (?P<word>succeeded|failed|interrupted)\b", _status_role)
_show_heads = _sub(
    r"^(?P<word>Failing steps|Slowest steps|Outputs|Metrics|Warnings)\b", lambda m: "head"
)
# `history`: the STATUS column, after the ID and the start time.
_history_status = _sub(r"^#\d+ +\S+ (?P<word>succeeded|failed|interrupted)\b", _status_role)
# `ps`: a step's exit column when it is not 0.
_ps_exit = _sub(
    r"^ *\d+ +\S+ +\S+ +(?P<word>\S+)  ",
    lambda m: None if m.group("word") in ("0", "?", "EXIT") else "bad",
)
# `replay`: the verdict.
_verdict = _sub(
    r"^(?P<word>reproduced|diverged|not reproducible[^:]*|reproducible under)\b",
    lambda m: "ok" if m.group("word").startswith(("reproduced", "reproducible")) else "bad",
)
# buildtape's own lines on stderr: `buildtape: error: …`, `buildtape: warning: …`.
_prefix = _sub(
    r"^buildtape: (?P<word>error|warning|note|check failed)\b",
    lambda m: _PREFIXES[m.group("word")],
)
# `buildtape: succeeded, 22 processes…` after a recording.
_recorded = _sub(r"^buildtape: (?P<word>succeeded|failed|interrupted),", _status_role)

PAINTERS: dict[str, Callable[[str], str]] = {
    "show": lambda t: _show_heads(_show_status(t)),
    "history": _history_status,
    "ps": _ps_exit,
    "verdict": _verdict,
    "stderr": lambda t: _recorded(_prefix(t)),
    "check": _sub(r"^(?P<word>check passed)\b", lambda m: "ok"),
}


def colour(text: str, kind: str, err: bool = False) -> str:
    """``text`` (already printable) with buildtape's colours for ``kind`` of output, when
    the stream it goes to is a terminal that wants colour; else unchanged."""
    return PAINTERS[kind](text) if enabled(err) else text


def echo(text: str, kind: str, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` of finished, printable text, in colour where wanted."""
    click.echo(colour(text, kind, err), err=err, nl=nl)


def say(line: str) -> None:
    """One of buildtape's own lines on stderr (``buildtape: warning: …``)."""
    echo(line, "stderr", err=True)
