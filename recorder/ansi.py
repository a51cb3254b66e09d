"""Colour in a build's output: SGR-styled runs of text, and nothing else from the tape.

A build run under a pty colours its output (gcc: ``ESC[01;31m ESC[K error:``). A tape is
someone else's data, so of all the escape sequences it may hold only two kinds are read:
SGR (``ESC[...m``: bold, dim, italic, underline, inverse, strike, the 8/16 colours, 256
colours ``38;5;N`` and truecolour ``38;2;R;G;B``, with ``;`` or ``:`` separators, and
their resets), which become a ``Style``; and erase-in-line (``ESC[K``), which is dropped.
Everything else (OSC title and clipboard writes, cursor movement, other CSI, C0 and C1
controls, DEL, lone surrogates) is made visible exactly as ``recorder.trust.printable``
does (``\\e]0;title\\x07``), so it can neither act on a terminal nor hide text. Concealed
text (SGR 8) and blinking are ignored.

Renderers read ``Run`` values: ``plain`` (JSON, files, a terminal without colour),
``terminal`` (SGR written afresh from each run's ``Style``, never the tape's own bytes)
and ``reports/ansi_html.py`` (``<span class=...>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from recorder.trust import printable

ESC = "\x1b"


@dataclass(frozen=True)
class Style:
    """How a run of text looks. A colour is a palette index ``"0"``..``"255"`` (0-7 the
    basic colours, 8-15 their bright forms) or ``"#rrggbb"``; None is the default."""

    fg: str | None = None
    bg: str | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    inverse: bool = False
    strike: bool = False

    @property
    def plain(self) -> bool:
        return self == _PLAIN

    def sgr(self) -> str:
        """The SGR sequence that sets exactly this style from any other."""
        params = ["0"]
        for on, code in (
            (self.bold, "1"),
            (self.dim, "2"),
            (self.italic, "3"),
            (self.underline, "4"),
            (self.inverse, "7"),
            (self.strike, "9"),
        ):
            if on:
                params.append(code)
        for colour, base in ((self.fg, 30), (self.bg, 40)):
            if colour is None:
                continue
            if colour.startswith("#"):
                r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
                params.append(f"{base + 8};2;{r};{g};{b}")
            elif int(colour) < 8:
                params.append(str(base + int(colour)))
            elif int(colour) < 16:
                params.append(str(base + 60 + int(colour) - 8))
            else:
                params.append(f"{base + 8};5;{colour}")
        return f"{ESC}[{';'.join(params)}m"


_PLAIN = Style()
RESET = f"{ESC}[0m"


@dataclass(frozen=True)
class Run:
    """Text (control characters already made visible) in one style."""

    text: str
    style: Style


# A CSI sequence: parameter bytes, intermediate bytes, one final byte (ECMA-48 5.4).
_CSI = re.compile(r"\x1b\[([0-?]*)([ -/]*)([@-~])")
_CSI_PREFIX = re.compile(r"\x1b(?:\[[0-?]*[ -/]*)?\Z")
_SGR_PARAMS = re.compile(r"[0-9;:]*\Z")
_ERASE_LINE = frozenset({"", "0", "1", "2"})


def _colour(kind: str, values: list[str]) -> str | None:
    """The colour of ``38;5;N`` (``kind`` 5) or ``38;2;R;G;B`` (``kind`` 2), or None."""
    if kind == "5" and values[:1] and values[0].isdigit() and int(values[0]) < 256:
        return str(int(values[0]))
    if kind == "2" and len(values) >= 3 and all(v.isdigit() for v in values[:3]):
        r, g, b = (min(255, int(v)) for v in values[:3])
        return f"#{r:02x}{g:02x}{b:02x}"
    return None


def _extended(codes: list[list[str]], i: int) -> tuple[str | None, int]:
    """The colour of the ``38``/``48`` code at ``codes[i]``, and the index after it.

    The ``;`` forms (``38;5;N``, ``38;2;R;G;B``) take their values from the codes that
    follow; the ``:`` forms (``38:5:N``, ``38:2:R:G:B``, ``38:2:CS:R:G:B``) carry them
    inside the one code.
    """
    sub = codes[i][1:]
    if sub:
        values = sub[2:5] if sub[0] == "2" and len(sub) >= 5 else sub[1:]
        return _colour(sub[0], values), i + 1
    kind = codes[i + 1][0] if i + 1 < len(codes) else ""
    width = {"5": 1, "2": 3}.get(kind, 0)
    values = [c[0] for c in codes[i + 2 : i + 2 + width]]
    return _colour(kind, values), min(len(codes), i + 2 + width)


def apply_sgr(style: Style, params: str) -> Style:
    """``style`` after the SGR sequence with these parameters (``"01;31"``)."""
    codes = [part.split(":") for part in params.split(";")] if params else [["0"]]
    i = 0
    while i < len(codes):
        head = codes[i][0]
        n = int(head) if head.isdigit() else 0
        if n in (38, 48):
            colour, i = _extended(codes, i)
            if colour is not None and n == 38:
                style = replace(style, fg=colour)
            elif colour is not None:
                style = replace(style, bg=colour)
            continue
        i += 1
        if n == 0:
            style = _PLAIN
        elif n == 1:
            style = replace(style, bold=True)
        elif n == 2:
            style = replace(style, dim=True)
        elif n == 3:
            style = replace(style, italic=True)
        elif n in (4, 21):
            style = replace(style, underline=True)
        elif n == 7:
            style = replace(style, inverse=True)
        elif n == 9:
            style = replace(style, strike=True)
        elif n == 22:
            style = replace(style, bold=False, dim=False)
        elif n == 23:
            style = replace(style, italic=False)
        elif n == 24:
            style = replace(style, underline=False)
        elif n == 27:
            style = replace(style, inverse=False)
        elif n == 29:
            style = replace(style, strike=False)
        elif 30 <= n <= 37:
            style = replace(style, fg=str(n - 30))
        elif n == 39:
            style = replace(style, fg=None)
        elif 40 <= n <= 47:
            style = replace(style, bg=str(n - 40))
        elif n == 49:
            style = replace(style, bg=None)
        elif 90 <= n <= 97:
            style = replace(style, fg=str(n - 90 + 8))
        elif 100 <= n <= 107:
            style = replace(style, bg=str(n - 100 + 8))
    return style


class Parser:
    """Splits text into styled runs, a chunk at a time: the style, and an escape sequence
    cut in two by a chunk boundary, carry over to the next ``feed``."""

    def __init__(self) -> None:
        self.style = _PLAIN
        self._pending = ""

    def feed(self, text: str) -> list[Run]:
        text = self._pending + text
        self._pending = ""
        cut = _CSI_PREFIX.search(text[-64:]) if ESC in text[-64:] else None
        if cut is not None:
            start = len(text) - len(text[-64:]) + cut.start()
            text, self._pending = text[:start], text[start:]
        return list(self._runs(text))

    def finish(self) -> list[Run]:
        """What is left: an unfinished escape sequence is shown, not kept."""
        rest, self._pending = self._pending, ""
        return [Run(printable(rest, one_line=False), self.style)] if rest else []

    def _runs(self, text: str) -> Iterator[Run]:
        pos = 0
        for m in _CSI.finditer(text):
            params, inter, final = m.groups()
            if final == "m" and not inter and _SGR_PARAMS.match(params):
                new = apply_sgr(self.style, params)
            elif final == "K" and not inter and params in _ERASE_LINE:
                new = self.style
            else:
                continue  # left in the text, where printable() makes it visible
            if m.start() > pos:
                yield Run(printable(text[pos : m.start()], one_line=False), self.style)
            pos = m.end()
            self.style = new
        if pos < len(text):
            yield Run(printable(text[pos:], one_line=False), self.style)


def runs(text: str) -> list[Run]:
    """``text`` as styled runs (adjacent runs of one style merged)."""
    p = Parser()
    out: list[Run] = []
    for run in p.feed(text) + p.finish():
        if out and out[-1].style == run.style:
            out[-1] = Run(out[-1].text + run.text, run.style)
        elif run.text:
            out.append(run)
    return out


_STYLE_ONLY = re.compile(r"\x1b\[[0-9;:]*m|\x1b\[[012]?K")


def strip_sgr(text: str) -> str:
    """``text`` without SGR and erase-in-line sequences, every other character as it was:
    what a pattern that reads a line (recorder/first_error.py) should see."""
    return _STYLE_ONLY.sub("", text) if ESC in text else text


def plain(text: str) -> str:
    """``text`` without its colour: SGR and erase-in-line removed, other controls visible."""
    if ESC not in text:
        return printable(text, one_line=False)
    return "".join(r.text for r in runs(text))


def terminal(text: str, colour: bool) -> str:
    """``text`` for a terminal: with ``colour``, each run in its style (written afresh,
    and reset at the end of every line so no colour outlives the text it came with);
    without, ``plain``. Either way, no other control reaches the terminal."""
    if not colour or ESC not in text:
        return plain(text)
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        out.append(_styled(runs(line)))
    return "".join(out)


def _styled(parts: list[Run]) -> str:
    out: list[str] = []
    current = _PLAIN
    for run in parts:
        body = run.text
        end = ""
        if body.endswith("\n"):
            body, end = body[:-1], "\n"
        if run.style != current:
            out.append(RESET if run.style.plain else run.style.sgr())
            current = run.style
        out.append(body)
        if end:
            if not current.plain:
                out.append(RESET)
                current = _PLAIN
            out.append(end)
    if not current.plain:
        out.append(RESET)
    return "".join(out)


class TerminalStream:
    """A stream (``replay --playback``) for a terminal, chunk by chunk: the style carries
    across chunks and lines as on the build's own terminal, and ``finish`` resets it."""

    def __init__(self, colour: bool) -> None:
        self._parser = Parser()
        self._colour = colour
        self._written = _PLAIN

    def feed(self, text: str) -> str:
        return self._render(self._parser.feed(text))

    def finish(self) -> str:
        out = self._render(self._parser.finish())
        if not self._written.plain:
            out += RESET
            self._written = _PLAIN
        return out

    def _render(self, parts: list[Run]) -> str:
        if not self._colour:
            return "".join(r.text for r in parts)
        out: list[str] = []
        for run in parts:
            if run.style != self._written and run.text:
                out.append(RESET if run.style.plain else run.style.sgr())
                self._written = run.style
            out.append(run.text)
        return "".join(out)
