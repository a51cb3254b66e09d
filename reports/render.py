"""Render the HTML pages: jinja2 templates, with the CSS, the JavaScript and the data
inlined, so each page is one file that works offline and makes no request of any kind."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from flame.model import StackTree
from recorder import __version__
from recorder.tape import Tape
from recorder.trust import printable
from recorder.units import human_size
from reports.ansi_html import Colours
from reports.data import flame_payload, report_payload, stream_tails
from reports.errors import ReportAssetError

_ASSETS = ("report.css", "viewer.js")


def _asset(name: str) -> str:
    try:
        return (resources.files("reports") / "assets" / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportAssetError(
            f"report asset {name} is missing from the installation ({exc}); reinstall buildtape"
        ) from None


def _template(name: str) -> jinja2.Template:
    try:
        return _env().get_template(name)
    except jinja2.TemplateNotFound:
        raise ReportAssetError(
            f"report template {name} is missing from the installation; reinstall buildtape"
        ) from None


def embed_json(data: Any) -> str:
    """JSON for a <script type="application/json"> block: every ``<`` escaped, so no string
    in a tape (a path, a line of stderr) can close the element or open a comment."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _seconds(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _size(n: int | None) -> str:
    return "-" if n is None else human_size(n)


def _visible(value: Any) -> Any:
    """Every ``{{ }}`` value: a string from a tape shows its control characters (``\\e``,
    ``\\x07``) instead of carrying them into the page. Markup (already rendered) is kept."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value, one_line=False)
    return value


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        finalize=_visible,
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["seconds"] = _seconds
    env.filters["size"] = _size
    env.filters["embed_json"] = embed_json
    env.globals["version"] = __version__
    env.globals["asset"] = _asset
    return env


def render_report(tape: Tape) -> str:
    tails = stream_tails(tape)
    data = report_payload(tape, tails)
    colours = Colours()
    styled = {name: [colours.line(x) for x in lines] for name, (lines, _) in tails.items()}
    return _template("report.html.j2").render(
        d=data, page="report", styled=styled, ansi_css=colours.css()
    )


def render_flame_page(tree: StackTree, title: str) -> str:
    data = {"flame": flame_payload(tree), "title": title}
    return _template("flame.html.j2").render(d=data, page="flame", ansi_css="")


def render_diff_page(report: dict[str, Any], tree: StackTree, names: tuple[str, str]) -> str:
    data = {"diff": report, "flame": flame_payload(tree), "names": list(names)}
    colours = Colours()
    streams = report.get("streams") or {}
    styled = {name: [colours.line(x) for x in lines] for name, lines in streams.items()}
    return _template("diff.html.j2").render(
        d=data, page="diff", styled=styled, ansi_css=colours.css()
    )


def render_tapes_diff_page(a: Tape, b: Tape, report: dict[str, Any], names: tuple[str, str]) -> str:
    """The diff page of two tapes: the report, and a differential flamegraph of process
    time from ``a`` to ``b``."""
    from flame.model import differential
    from reports.data import tape_tree

    return render_diff_page(report, differential(tape_tree(a), tape_tree(b)), names)
