"""The interactive SVG in a real browser: Debian's chromium, driven headless by Playwright."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import needs_browser
from tests.conftest import FIXTURES, buildtape

pytestmark = needs_browser


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("www")
    buildtape(
        "flame", FIXTURES / "golden/flame/basic/input.folded", "-o", root / "basic.svg", check=True
    )
    d = FIXTURES / "golden/flame/diff"
    buildtape(
        "flame", "--diff", d / "base.folded", d / "new.folded", "-o", root / "diff.svg", check=True
    )
    (root / "favicon.ico").write_bytes(b"")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1250, "height": 240})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    page.screenshot(path=str(tmp_path / "last.png"))  # kept under pytest's temp dir
    page.close()
    assert errors == []


def test_hover_zoom_search_and_reset(site: str, page: Any) -> None:
    page.goto(f"{site}/basic.svg")
    frames = page.locator("#frames g")
    lvm = page.locator("#frames g", has_text="gcc -c lvm.c").first
    lvm.hover()
    assert (
        page.locator("#details")
        .text_content()
        .startswith("Function: gcc -c lvm.c (505 samples, 49.03%, self 0)")
    )
    lvm.click()
    assert "zoom=" in page.url
    assert page.locator("#frames g.parent").count() == 2  # make and all, kept and faded
    hidden = page.locator("#frames g.hide").count()
    assert hidden == frames.count() - 2 - 4  # all but lvm's subtree of 4 and its 2 ancestors
    assert float(lvm.locator("rect").get_attribute("width")) > 1150  # fills the width
    page.fill("#search", "cc1")
    assert page.locator("#matched").text_content() == "Matched: 89.8%"
    assert "s=cc1" in page.url
    page.fill("#search", "CC1")
    assert page.locator("#matched").text_content() == "Matched: 0.0%"
    page.check("#ignorecase")
    assert page.locator("#matched").text_content() == "Matched: 89.8%"
    page.click("#unzoom")
    assert page.locator("#frames g.hide").count() == 0
    assert "zoom=" not in page.url


def test_nested_matches_count_once(site: str, page: Any) -> None:
    page.goto(f"{site}/basic.svg")
    page.fill("#search", "^(gcc|cc1)")  # cc1 frames sit inside gcc frames
    assert page.locator("#matched").text_content() == "Matched: 93.7%"  # 460 + 505 of 1030


def test_url_restores_zoom_and_search(site: str, page: Any) -> None:
    page.goto(f"{site}/basic.svg?zoom=3&s=parse")
    assert page.locator("#frames g.hide").count() > 0
    # In an SVG document the input's nodeName is lowercase, which Playwright's input_value
    # refuses; read it through the DOM.
    assert page.evaluate("document.getElementById('search').value") == "parse"
    assert page.locator("#matched").text_content() == "Matched: 19.4%"  # 200 of 1030


def test_differential_svg_has_ghost_and_details(site: str, page: Any) -> None:
    page.goto(f"{site}/diff.svg")
    ghost = page.locator("#frames g.ghost")
    assert ghost.count() == 1
    ghost.hover()
    assert "ld (only in base: 50" in page.locator("#details").text_content()
    page.locator("#frames g", has_text="codegen").first.hover()
    assert "base 200, +200 (+100.00%)" in page.locator("#details").text_content()
