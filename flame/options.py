"""Rendering options for flamegraphs, documented once, defaults in one place.

Each field names the flamegraph.pl option it mirrors, so ``buildtape flame`` can stand
in for the common uses of flamegraph.pl (see docs/flame.md).
"""

from __future__ import annotations

from dataclasses import dataclass

PALETTES = ("hot", "mem", "io", "red", "green", "blue", "aqua", "yellow", "purple", "orange")
ORDERS = ("alpha", "widest")
DIFF_MODES = ("total", "self")


@dataclass(frozen=True)
class FlameOptions:
    # --title / --subtitle: text above the graph.
    title: str = "Flame Graph"
    subtitle: str = ""
    # --width: image width in pixels; --height: height of one frame.
    width: int = 1200
    frame_height: int = 16
    # --fontsize / --fonttype.
    font_size: int = 12
    font_family: str = "Verdana, sans-serif"
    # --minwidth: frames narrower than this many pixels are left out (with their children).
    min_width: float = 0.1
    # --colors: palette for frame colours; each name always gets the same colour.
    palette: str = "hot"
    # --inverted: an icicle graph, roots at the top.
    inverted: bool = False
    # Children order: alpha (flamegraph.pl's, by name) or widest (widest first).
    order: str = "alpha"
    # --countname: the unit shown in details; None takes the profile's own unit.
    count_name: str | None = None
    # --nametype: the label before a frame's name in the details line.
    name_type: str = "Function:"
    # False (--no-js): no script, a <title> per frame instead; for golden files and viewers
    # that run no script.
    javascript: bool = True
    # Differential colouring: by the change of a frame's total (inclusive) or self weight.
    diff_mode: str = "total"
    # Differential: changes smaller than this fraction of the total stay white.
    noise: float = 0.001
