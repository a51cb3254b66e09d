"""Frame colours that depend only on the frame's name, so every render agrees."""

from __future__ import annotations

import functools
import zlib

# (r, g, b) base and span for each palette: colour = base + span * v, v in [0, 1).
_RANGES: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "hot": ((205, 50), (0, 230), (0, 55)),
    "mem": ((0, 0), (190, 50), (0, 210)),
    "io": ((80, 60), (80, 60), (190, 55)),
    "red": ((200, 55), (50, 80), (50, 80)),
    "green": ((50, 60), (200, 55), (50, 60)),
    "blue": ((80, 60), (80, 60), (205, 50)),
    "aqua": ((50, 60), (165, 55), (165, 55)),
    "yellow": ((175, 55), (175, 55), (50, 20)),
    "purple": ((190, 65), (80, 60), (190, 65)),
    "orange": ((190, 65), (90, 65), (0, 0)),
}


def _unit(name: str, salt: int) -> float:
    return (zlib.crc32(name.encode("utf-8", "surrogateescape"), salt) & 0xFFFF) / 65536.0


@functools.lru_cache(maxsize=65536)
def frame_color(name: str, palette: str) -> str:
    (rb, rs), (gb, gs), (bb, bs) = _RANGES[palette]
    # Like flamegraph.pl, colour by the function name (the part before any " (file:line)").
    key = name.split(" (", 1)[0]
    r = rb + int(rs * _unit(key, 1))
    g = gb + int(gs * _unit(key, 2))
    b = bb + int(bs * _unit(key, 3))
    return f"#{r:02x}{g:02x}{b:02x}"


def diff_color(delta: float, scale: float) -> str:
    """White for no change, red for growth, blue for shrinkage, deeper as |delta|/scale grows."""
    if scale <= 0 or delta == 0:
        return "#ffffff"
    strength = min(1.0, abs(delta) / scale)
    fade = round(255 * (1 - strength * 0.85))
    return f"#ff{fade:02x}{fade:02x}" if delta > 0 else f"#{fade:02x}{fade:02x}ff"
