"""Interactive, self-contained SVG flamegraphs.

Each drawn frame is one ``<g>`` with a ``<rect>`` and, when it fits, a ``<text>`` label.
Names and weights for the details line, zoom and search travel once, as a compact JSON
table, in the script (``assets/flame.js``); without script (``javascript=False``) every
frame carries a ``<title>`` instead, so the file still explains itself when hovered.
Output depends only on the tree and the options: byte-identical across runs.
"""

from __future__ import annotations

import json
import re
from html import escape as _html_escape
from importlib import resources

from flame.errors import FlameAssetError
from flame.layout import Placed, place, root_width
from flame.model import Frame, StackTree
from flame.options import FlameOptions
from flame.palette import diff_color, frame_color

# Characters XML 1.0 does not allow in a document (C0 but tab/newline/CR, surrogates,
# U+FFFE/U+FFFF), plus DEL and C1: shown as visible escapes so the SVG stays valid.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    """&, < and > as entities (xml.sax.saxutils.escape, without importing urllib), and
    characters XML cannot hold as visible ``\\xNN`` escapes: valid XML for any name."""
    if _NOT_XML.search(text):
        text = _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return _html_escape(text, quote=False)


_PAD_X = 10
_PAD_TOP = 3  # above the title block
_TITLE_BLOCK = 2.5  # in font sizes: title, subtitle and controls
_PAD_BOTTOM = 2.2  # in font sizes: details line
_CHAR_WIDTH = 0.59  # of the font size, for label truncation


def asset(name: str) -> str:
    try:
        path = resources.files("flame").joinpath("assets").joinpath(name)
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise FlameAssetError(
            f"flame asset {name} is missing from the installation ({exc}); reinstall buildtape"
        ) from None


def _num(x: float) -> str:
    """Weights as written in the data table: integers without a decimal point."""
    return str(int(x)) if float(x).is_integer() else f"{x:.3f}".rstrip("0")


def _label(name: str, width_px: float, font_size: int) -> str:
    chars = int((width_px - 6) / (font_size * _CHAR_WIDTH))
    if chars < 3:
        return ""
    return name if len(name) <= chars else name[: chars - 2] + ".."


def _unit(tree: StackTree, options: FlameOptions) -> str:
    return options.count_name or tree.unit


def _details(p: Placed, tree: StackTree, unit: str) -> str:
    f = p.frame
    total = tree.total or 1.0
    if tree.differential:
        base = f.base_total
        delta = f.total - base
        rel = f" ({delta / base * 100:+.2f}%)" if base else " (new)"
        if f.is_ghost:
            return f"{f.name} (only in base: {_num(base)} {unit})"
        sign = "+" if delta >= 0 else "-"
        return (
            f"{f.name} ({_num(f.total)} {unit}, base {_num(base)}, {sign}{_num(abs(delta))}{rel})"
        )
    return (
        f"{f.name} ({_num(f.total)} {unit}, {f.total / total * 100:.2f}%, "
        f"self {_num(f.self_weight)})"
    )


def _delta(f: Frame, mode: str) -> float:
    if mode == "self":
        return f.self_weight - f.base_self
    return f.total - f.base_total


def _fill(p: Placed, tree: StackTree, options: FlameOptions, scale: float) -> str:
    f = p.frame
    if not tree.differential:
        return frame_color(f.name, options.palette) if p.depth else "#c8c8c8"
    if f.is_ghost:
        return "url(#ghost)"
    delta = _delta(f, options.diff_mode)
    if abs(delta) <= options.noise * max(tree.total, tree.root.base_total):
        return "#ffffff"
    return diff_color(delta, scale)


def _diff_scale(placed: list[Placed], tree: StackTree, options: FlameOptions) -> float:
    if not tree.differential:
        return 0.0
    deltas = [_delta(p.frame, options.diff_mode) for p in placed[1:] if not p.frame.is_ghost]
    return max((abs(d) for d in deltas), default=0.0)


def min_weight(total: float, options: FlameOptions) -> float:
    """The narrowest weight drawn: ``--minwidth`` pixels at this width."""
    return options.min_width * total / (options.width - 2 * _PAD_X)


def render_svg(tree: StackTree, options: FlameOptions, placed: list[Placed] | None = None) -> str:
    """The whole SVG document for ``tree``; ``placed``: its frames already placed (as
    ``flame.drawable`` does for big folded inputs), else ``flame.layout.place`` places them."""
    fs = options.font_size
    fh = options.frame_height
    usable = options.width - 2 * _PAD_X
    px_per_weight = usable / (root_width(tree) or 1.0)
    if placed is None:
        placed = place(tree, options.order, options.min_width / px_per_weight)
    max_depth = max((p.depth for p in placed), default=0)
    top = _PAD_TOP + fs * _TITLE_BLOCK + (fs if options.subtitle else 0)
    height = int(top + (max_depth + 1) * fh + fs * _PAD_BOTTOM + 4)
    unit = _unit(tree, options)
    scale = _diff_scale(placed, tree, options)

    def y_of(depth: int) -> float:
        if options.inverted:
            return top + depth * fh
        return top + (max_depth - depth) * fh

    out: list[str] = []
    w = options.width
    out.append('<?xml version="1.0" standalone="no"?>\n')
    out.append(
        f'<svg version="1.1" width="{w}" height="{height}" viewBox="0 0 {w} {height}" '
        'xmlns="http://www.w3.org/2000/svg">\n'
    )
    css = asset("flame.css").replace("FONT_FAMILY", options.font_family)
    out.append(f"<style>{css.replace('FONT_SIZE', str(fs))}</style>\n")
    out.append(
        '<defs><pattern id="ghost" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eeeeee"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#bbbbbb" stroke-width="2"/></pattern></defs>\n'
    )
    out.append(f'<rect class="bg" width="{w}" height="{height}"/>\n')
    out.append(
        f'<text id="title" x="{w / 2:.1f}" y="{_PAD_TOP + fs * 1.5:.1f}">'
        f"{escape(options.title)}</text>\n"
    )
    if options.subtitle:
        out.append(
            f'<text id="subtitle" x="{w / 2:.1f}" y="{_PAD_TOP + fs * 2.7:.1f}">'
            f"{escape(options.subtitle)}</text>\n"
        )
    details_y = height - fs * 0.8
    out.append(f'<text id="details" x="{_PAD_X}" y="{details_y:.1f}"> </text>\n')
    out.append(f'<text id="matched" x="{w - _PAD_X}" y="{details_y:.1f}"> </text>\n')
    out.append('<g id="frames">\n')
    names: dict[str, int] = {}
    table: list[str] = []
    for p in placed:
        f = p.frame
        x = _PAD_X + p.start * px_per_weight
        width = p.width * px_per_weight
        y = y_of(p.depth)
        cls = ' class="ghost"' if tree.differential and f.is_ghost else ""
        title = "" if options.javascript else f"<title>{escape(_details(p, tree, unit))}</title>"
        label = _label(f.name, width, fs)
        text = (
            f'<text x="{x + 3:.1f}" y="{y + fh - 4.5:.1f}">{escape(label)}</text>' if label else ""
        )
        out.append(
            f'<g{cls}>{title}<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{fh - 1}" fill="{_fill(p, tree, options, scale)}"/>{text}</g>\n'
        )
        n = names.setdefault(f.name, len(names))
        row = [str(n), _num(f.total), _num(f.self_weight), str(p.parent)]
        if tree.differential:
            row += [_num(f.base_total), _num(f.base_self)]
        table.append(",".join(row))
    out.append("</g>\n")
    if options.javascript:
        meta = {
            "unit": unit,
            "total": tree.total,
            "nametype": options.name_type,
            "differential": tree.differential,
            "inverted": options.inverted,
            "fontSize": fs,
            "charWidth": _CHAR_WIDTH,
            "padX": _PAD_X,
            "width": w,
        }
        data = (
            f"var FLAME_META = {json.dumps(meta, sort_keys=True)};\n"
            f"var FLAME_NAMES = {json.dumps(list(names), ensure_ascii=False)};\n"
            f"var FLAME_FRAMES = [{','.join(table)}];\n"
        )
        script = (data + asset("flame.js")).replace("]]>", "]]]]><![CDATA[>")
        out.append(f'<script type="text/ecmascript"><![CDATA[\n{script}]]></script>\n')
    out.append("</svg>\n")
    return "".join(out)
