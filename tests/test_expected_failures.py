"""A build that succeeds while some of its steps fail (configure's probes): the report puts
those expected failures after the timeline, collapsed, with a count, and keeps "Why it
failed" for builds that failed. Real builds through the real CLI, checked in chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser import needs_browser
from tests.conftest import FIXTURES, buildtape

# A configure-like probe loop: each missing header makes one real cc exit non-zero.
CONFIGURE = """#!/bin/sh
for h in stdio.h no_such_header_one.h string.h no_such_header_two.h no_such_header_three.h; do
  printf '#include <%s>\\nint main(void) { return 0; }\\n' "$h" > conftest.c
  if cc -c conftest.c -o conftest.o 2>>config.log; then echo "checking $h... yes"
  else echo "checking $h... no"; fi
done
rm -f conftest.c conftest.o
echo "#define HAVE_STDIO_H 1" > config.h
"""


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("configure")
    ws = root / "ws"
    ws.mkdir()
    (ws / "configure").write_text(CONFIGURE)
    (ws / "configure").chmod(0o755)
    tape = root / "configure.tape"
    buildtape("record", "-o", tape, "--", "./configure", cwd=ws, check=True)
    html = root / "configure.html"
    buildtape("report", tape, "-o", html, check=True)
    return html


def _section_order(html: str) -> list[str]:
    return re.findall(r'<section id="([\w-]+)"', html)


def test_expected_failures_follow_the_timeline_collapsed(configured: Path) -> None:
    html = configured.read_text()
    assert 'id="failures"' not in html and "Why it failed" not in html
    order = _section_order(html)
    assert order.index("timeline") < order.index("expected-failures") < order.index("flame")
    section = html.split('<section id="expected-failures"')[1].split("</section>")[0]
    assert re.search(r"<details id=\"expected-failures-list\">\s*<summary>", section)
    assert "<details open" not in section
    assert "3 steps exited non-zero; the build succeeded" in section
    assert section.count("conftest.c -o conftest.o</td>") == 3


def test_a_failed_build_still_opens_with_why_it_failed(tmp_path: Path) -> None:
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "c-make-failing", ws)
    tape = tmp_path / "fail.tape"
    assert buildtape("record", "-o", tape, "--", "make", cwd=ws).returncode == 2
    html_path = tmp_path / "fail.html"
    buildtape("report", tape, "-o", html_path, check=True)
    html = html_path.read_text()
    order = _section_order(html)
    assert order[0] == "failures" and "expected-failures" not in order
    assert "parse.c:9:25: error:" in html.split('id="failures"')[1].split("</section>")[0]


@needs_browser
def test_expected_failures_are_collapsed_in_a_browser(configured: Path, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900}, bypass_csp=True)
    try:
        page.goto(configured.as_uri())
        page.wait_for_function("window.buildtape && window.buildtape.ready")
        tops = page.evaluate(
            """() => Object.fromEntries(['timeline', 'expected-failures', 'flame'].map(
                 (id) => [id, document.getElementById(id).getBoundingClientRect().top]))"""
        )
        assert tops["timeline"] < tops["expected-failures"] < tops["flame"]
        assert page.evaluate("document.getElementById('expected-failures-list').open") is False
        table = page.locator("#expected-failures table")
        assert not table.is_visible()
        closed = page.evaluate("document.getElementById('expected-failures').offsetHeight")
        assert closed < 200  # a heading and one summary line
        page.click("#expected-failures summary")
        assert table.is_visible()
        assert page.locator("#expected-failures tbody tr").count() == 3
    finally:
        page.close()
