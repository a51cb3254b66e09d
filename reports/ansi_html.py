"""A build's coloured output in HTML: each styled run (``recorder.ansi``) as a
``<span class="ansi-...">``, classes and never inline styles, with its text escaped.

The 16 basic colours and the attributes are in ``assets/report.css``, chosen to read on
the page's white. A 256-colour index (16-255, the xterm cube and greys) or a truecolour
gets a class named after it and a rule in a stylesheet generated for the colours the page
uses (``Colours.css``), so a page carries rules only for what it shows.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from recorder.ansi import Run, Style, runs

_CUBE = (0, 95, 135, 175, 215, 255)


def xterm_rgb(index: int) -> str:
    """``#rrggbb`` of xterm's colour ``index`` (16-255)."""
    if index >= 232:
        v = 8 + 10 * (index - 232)
        return f"#{v:02x}{v:02x}{v:02x}"
    n = index - 16
    r, g, b = _CUBE[n // 36], _CUBE[n // 6 % 6], _CUBE[n % 6]
    return f"#{r:02x}{g:02x}{b:02x}"


def _colour_class(colour: str) -> str:
    return f"x{colour[1:]}" if colour.startswith("#") else colour


class Colours:
    """Renders lines, remembering the extended colours used for ``css``."""

    def __init__(self) -> None:
        self._used: set[tuple[str, str]] = set()

    def classes(self, style: Style) -> list[str]:
        fg, bg = (style.bg, style.fg) if style.inverse else (style.fg, style.bg)
        out = []
        for colour, side in ((fg, "fg"), (bg, "bg")):
            if colour is None:
                if style.inverse:
                    out.append(f"ansi-{side}-inverse")
                continue
            name = _colour_class(colour)
            if colour.startswith("#") or int(colour) >= 16:
                self._used.add((side, colour))
            out.append(f"ansi-{side}-{name}")
        out += [
            f"ansi-{attr}"
            for attr in ("bold", "dim", "italic", "underline", "strike")
            if getattr(style, attr)
        ]
        return out

    def span(self, run: Run) -> Markup:
        classes = self.classes(run.style)
        if not classes:
            return escape(run.text)
        return Markup('<span class="{}">{}</span>').format(" ".join(classes), run.text)

    def line(self, text: str) -> Markup:
        """One line of output (or several) as HTML: styled runs, every control visible."""
        return Markup("").join(self.span(r) for r in runs(text))

    def css(self) -> str:
        """Rules for the extended colours rendered so far, in a stable order."""
        rules = []
        for side, colour in sorted(self._used):
            rgb = colour if colour.startswith("#") else xterm_rgb(int(colour))
            prop = "color" if side == "fg" else "background-color"
            rules.append(f".ansi-{side}-{_colour_class(colour)} {{ {prop}: {rgb}; }}")
        return "\n".join(rules)
