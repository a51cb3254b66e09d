"""Text from a tape made plain before it goes into a document: terminal escape sequences
(colours, cursor moves, OSC titles and clipboard writes) removed whole, every other control
character removed. What is left is what a person saw, with nothing that can act."""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other two-byte ESC sequences, and the
# same introduced by their 8-bit C1 forms.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# C0 controls but tab and newline, DEL, C1 controls, lone surrogates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"[\t\n]+")


def plain(text: str, one_line: bool = False) -> str:
    """``text`` without escape sequences or control characters; ``one_line`` turns tabs
    and newlines into single spaces as well."""
    text = _CONTROL.sub("", _ESCAPES.sub("", text))
    return _LINE_BREAKS.sub(" ", text).strip() if one_line else text


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"
