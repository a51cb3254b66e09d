"""The HTML pages (report, flame page, diff page) in a real browser: Debian's chromium,
driven headless by Playwright, on tapes of real fixture builds."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flame.folded import read_lines
from flame.model import StackTree
from tests.browser import needs_browser
from tests.conftest import FIXTURES, buildtape, needs_strace

pytestmark = [needs_browser, needs_strace]


class Page:
    """A page that records console errors, uncaught exceptions and every request."""

    def __init__(self, browser: Any, shots: Path) -> None:
        # The pages forbid eval in their CSP; Playwright's own probes need it.
        self.page = browser.new_page(viewport={"width": 1300, "height": 900}, bypass_csp=True)
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.shots = shots
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, html: Path) -> Any:
        self.uri = html.as_uri()
        self.page.goto(self.uri)
        self.page.wait_for_function("window.buildtape && window.buildtape.ready")
        return self.page

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def pages(browser: Any, tmp_path: Path) -> Iterator[Callable[[Path], Any]]:
    opened: list[Page] = []

    def open_page(html: Path) -> Any:
        p = Page(browser, tmp_path)
        opened.append(p)
        return p.open(html)

    yield open_page
    for i, p in enumerate(opened):
        p.shot(f"page{i}")  # screenshots stay under pytest's temp dir
        p.page.close()
        assert p.errors == [], p.errors
        assert set(p.requests) == {p.uri}, p.requests  # self-contained: nothing else is fetched
        assert p.dialogs == []


def record(ws: Path, tape: Path, *argv: str) -> dict[str, Any]:
    buildtape("record", "-q", "--no-store", "-o", tape, "--", *argv, cwd=ws)
    data: dict[str, Any] = json.loads(buildtape("show", "--json", tape, check=True).stdout)
    return data


def reported(
    ws: Path, tmp_path: Path, pages: Callable[[Path], Any]
) -> tuple[Any, Path, dict[str, Any]]:
    """Record ``make -j2`` in ``ws``, write its report and open it: (page, tape, show --json)."""
    tape = tmp_path / "build.tape"
    shown = record(ws, tape, "make", "-j2")
    html = tmp_path / "build.html"
    buildtape("report", tape, "-o", html, check=True)
    return pages(html), tape, shown


def test_report_of_a_failed_build(
    fixture_copy: Callable[..., Path], tmp_path: Path, pages: Callable[[Path], Any]
) -> None:
    page, _, shown = reported(fixture_copy("c-make-failing"), tmp_path, pages)

    assert page.locator("#header .badge").text_content() == "failed"
    assert page.locator("#exit-code").text_content().strip() == "2"
    error = page.locator("#failures mark.error-line").first.text_content()
    assert "parse.c:" in error and "error:" in error
    assert (
        "cc -O2 -Wall -c parse.c -o parse.o"
        in page.locator("#failures pre.argv").first.text_content()
    )

    # One bar per process; a click on the failing compile opens its panel.
    bars = page.locator("#tl-svg rect.bar")
    assert bars.count() == len(shown["processes"])
    step_id = shown["failing_steps"][0]["id"]
    page.locator(f'#tl-svg rect.bar[data-id="{step_id}"]').click()
    assert page.locator("#panel").is_visible()
    assert "parse.c" in page.locator("#panel-title").text_content()
    assert page.locator("#panel-exit").text_content() == "1"
    assert "parse.c" in page.locator("#panel-body").text_content()  # files read

    # The failure panel's step link opens the same panel.
    page.locator("#panel-close").click()
    page.locator("#failures .step-link").first.click()
    assert f"Process {step_id}:" in page.locator("#panel-title").text_content()

    # Output search filters the lines.
    page.locator("#stream-search").fill("error:")
    page.wait_for_function("document.querySelector('#stream-count').textContent !== ''")
    hits = int(page.locator("#stream-count").text_content().split()[0])
    assert hits == sum(
        "error:" in line.lower()
        for line in page.locator("#stderr .line").all_text_contents()
        + page.locator("#stdout .line").all_text_contents()
    )
    assert hits >= 1 and page.locator(".stream .line.hidden").count() > 0


def test_report_marks_the_critical_path_and_sorts(
    fixture_copy: Callable[..., Path], tmp_path: Path, pages: Callable[[Path], Any]
) -> None:
    page, _, shown = reported(fixture_copy("c-make"), tmp_path, pages)
    assert page.locator("#failures").count() == 0
    link = next(p for p in shown["processes"] if p["argv"][0] == "cc" and "app" in p["argv"])
    assert "critical" in page.locator(f'#tl-svg rect.bar[data-id="{link["id"]}"]').get_attribute(
        "class"
    )
    critical = page.locator("#tl-svg rect.bar.critical")
    assert 2 <= critical.count() < len(shown["processes"])  # a compile, then the link
    # The chain is sequential: each marked step ends before the next one starts.
    spans = sorted(
        (p["start_s"], p["end_s"])
        for p in shown["processes"]
        if "critical"
        in page.locator(f'#tl-svg rect.bar[data-id="{p["id"]}"]').get_attribute("class")
    )
    assert all(a[1] <= b[0] + 0.011 for a, b in itertools.pairwise(spans))

    # Zoom in on the timeline: bars get wider; reset brings them back.
    bar = page.locator(f'#tl-svg rect.bar[data-id="{link["id"]}"]')
    before = float(bar.get_attribute("width"))
    page.locator("#tl-in").click()
    assert float(bar.get_attribute("width")) == pytest.approx(2 * before, rel=0.02)
    page.locator("#tl-reset").click()
    assert float(bar.get_attribute("width")) == pytest.approx(before, rel=0.01)

    # The slowest-steps table sorts by duration when its header is clicked.
    page.locator("#slowest-table th", has_text="Duration").click()
    values = [
        float(v)
        for v in page.locator("#slowest-table tbody td:nth-child(3)").evaluate_all(
            "tds => tds.map(td => td.dataset.v)"
        )
    ]
    assert values == sorted(values, reverse=True)
    page.locator("#slowest-table th", has_text="Duration").click()
    values = [
        float(v)
        for v in page.locator("#slowest-table tbody td:nth-child(3)").evaluate_all(
            "tds => tds.map(td => td.dataset.v)"
        )
    ]
    assert values == sorted(values)


def _pixel(page: Any, name: str) -> list[int]:
    """The colour the canvas drew in the middle of the first frame called ``name``."""
    pixel: list[int] = page.evaluate(
        """name => {
          const r = window.buildtape.flame.rectOf(name), c = document.querySelector('#flame-canvas');
          const box = c.getBoundingClientRect(), k = c.width / box.width;
          const d = c.getContext('2d').getImageData(Math.round((r.x - box.left + 2) * k),
                                                    Math.round((r.y - box.top + r.height / 2) * k), 1, 1).data;
          return [d[0], d[1], d[2]];
        }""",
        name,
    )
    return pixel


def _stacks(tape: Path) -> list[tuple[list[str], float]]:
    """The tape's stacks as the flame code computes them in Python (not the page)."""
    from recorder.tape import open_tape
    from reports.data import tape_tree

    with open_tape(tape) as t:
        return list(tape_tree(t).stacks())


def test_report_flamegraph_search_zoom_and_reset(
    fixture_copy: Callable[..., Path], tmp_path: Path, pages: Callable[[Path], Any]
) -> None:
    page, tape, _ = reported(fixture_copy("c-make"), tmp_path, pages)

    stacks = _stacks(tape)
    total = sum(w for _, w in stacks)
    # The share of the stacks with a matching frame anywhere is what the page must show.
    expected = (
        100 * sum(w for stack, w in stacks if any(re.search("cc1", f) for f in stack)) / total
    )
    page.locator("#flame-search").fill("cc1")
    page.wait_for_function(
        "document.querySelector('#flame-match').textContent.startsWith('Matched')"
    )
    shown = float(page.locator("#flame-match").text_content().removeprefix("Matched: ").rstrip("%"))
    assert shown == pytest.approx(expected, abs=0.01) and 0 < shown < 100
    assert _pixel(page, "cc1") == [230, 0, 230]  # highlighted
    assert _pixel(page, "make") != [230, 0, 230]

    target = "cc -c parse.c"
    rect = page.evaluate("n => window.buildtape.flame.rectOf(n)", target)
    canvas_width = page.locator("#flame-canvas").bounding_box()["width"]
    assert rect["width"] < canvas_width / 2
    page.mouse.click(rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2)
    assert page.locator("#flame-crumb").text_content() == f"zoomed: {target}"
    zoomed = page.evaluate("n => window.buildtape.flame.rectOf(n)", target)
    assert zoomed["width"] == pytest.approx(canvas_width, abs=2)
    assert page.evaluate("() => window.buildtape.flame.rectOf('cc -c main.c')") is None
    page.locator("#flame-reset").click()
    assert page.locator("#flame-crumb").text_content() == ""
    assert page.evaluate("n => window.buildtape.flame.rectOf(n)", target)["width"] == pytest.approx(
        rect["width"], abs=0.5
    )

    page.locator("#flame-icicle").check()
    assert (
        page.evaluate("n => window.buildtape.flame.rectOf(n)", "all")["y"] < rect["y"]
    )  # root on top


def test_flame_page_of_folded_files_and_differential(
    tmp_path: Path, pages: Callable[[Path], Any]
) -> None:
    basic = FIXTURES / "golden/flame/basic/input.folded"
    html = tmp_path / "basic.html"
    buildtape("flame", basic, "-o", html, check=True)
    page = pages(html)
    assert page.evaluate("() => window.buildtape.flame.rectOf('gcc -c lvm.c') !== null")
    assert page.locator("#heaviest tbody tr").count() > 0

    d = FIXTURES / "golden/flame/diff"
    html = tmp_path / "diff.html"
    buildtape("flame", "--diff", d / "base.folded", d / "new.folded", "-o", html, check=True)
    page = pages(html)
    data = page.evaluate(
        "() => { const f = window.buildtape.flame.d; return f.names.map((n, i) => n); }"
    )
    assert data and page.evaluate("() => window.buildtape.flame.d.differential") is True
    grew = page.evaluate(
        """() => { const f = window.buildtape.flame, d = f.d;
                   for (const [i] of f.drawn) if (d.total[i] > d.btotal[i] && d.depth[i] > 0) return f.name(i);
                   return null; }"""
    )
    assert grew is not None
    r, g, b = _pixel(page, grew)
    assert r == 255 and g < 255 and b < 255  # red: it grew


def test_diff_page_names_the_changed_step(
    fixture_copy: Callable[..., Path], tmp_path: Path, pages: Callable[[Path], Any]
) -> None:
    a, b = fixture_copy("c-make", into="a"), fixture_copy("c-make", into="b")
    main_c = b / "main.c"
    main_c.write_text(main_c.read_text() + "\nint unused_in_b(void) { return 7; }\n")
    record(a, tmp_path / "a.tape", "make", "-j2")
    record(b, tmp_path / "b.tape", "make", "-j2")
    html = tmp_path / "d.html"
    out = buildtape(
        "diff", tmp_path / "a.tape", tmp_path / "b.tape", "--format", "html", "-o", html
    )
    assert out.returncode == 1
    page = pages(html)
    assert "main.c" in page.locator("#cause").text_content()
    cause_row = page.locator("#changed-steps tr.role-cause .step-identity")
    assert cause_row.count() == 1 and "main.c" in cause_row.text_content()
    assert "main.c" in page.locator("#inputs").text_content()
    assert page.evaluate("() => window.buildtape.flame.d.differential") is True


def test_hostile_text_stays_text(tmp_path: Path, pages: Callable[[Path], Any]) -> None:
    evil = "</script><img src=x onerror=alert(1)><!--"
    tape = tmp_path / "evil.tape"
    buildtape("record", "-q", "--no-store", "--trace", "none", "-o", tape, "--",
              "sh", "-c", f"echo '{evil} error: boom' >&2; exit 1", cwd=tmp_path)  # fmt: skip
    html = tmp_path / "evil.html"
    buildtape("report", tape, "-o", html, check=True)
    page = pages(html)
    assert evil in page.locator("#stderr").text_content()
    assert page.locator("#stderr img").count() == 0


def test_report_bytes_do_not_depend_on_hash_seed(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make")
    tape = tmp_path / "ok.tape"
    record(ws, tape, "make", "-j2")
    outs = []
    for seed in ("1", "2"):
        target = tmp_path / f"r{seed}.html"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "buildtape", "report", str(tape), "-o", str(target)],
                       env=env, check=True, capture_output=True)  # fmt: skip
        outs.append(target.read_bytes())
    assert outs[0] == outs[1]
    assert b"http://" not in outs[0].replace(b"http://www.w3.org/2000/svg", b"")


def test_report_errors_are_one_line(tmp_path: Path) -> None:
    out = buildtape("report", tmp_path / "missing.tape")
    assert out.returncode == 4 and len(out.stderr.decode().strip().splitlines()) == 1
    bad = tmp_path / "bad.tape"
    bad.write_bytes(b"not a tape at all")
    out = buildtape("report", bad, "-o", tmp_path / "bad.html")
    assert out.returncode == 3 and not (tmp_path / "bad.html").exists()


def test_report_header_environment_and_events(tmp_path: Path, pages: Callable[[Path], Any]) -> None:
    secret = "s3cr3t-value-that-must-not-show"
    env = {**os.environ, "DEPLOY_TOKEN": secret}
    script = (
        'echo \'{"kind": "metric", "name": "binary_size", "value": 4242, "unit": "bytes"}\''
        ' >> "$BUILDTAPE_EVENTS"; echo built'
    )
    tape = tmp_path / "ok.tape"
    buildtape("record", "-q", "--no-store", "--trace", "none", "--label", "branch=main", "-o",
              tape, "--", "sh", "-c", script, cwd=tmp_path, env=env, check=True)  # fmt: skip
    html = tmp_path / "ok.html"
    buildtape("report", tape, "-o", html, check=True)
    assert secret.encode() not in html.read_bytes()
    page = pages(html)
    assert page.locator("#header .badge").text_content() == "succeeded"
    assert "branch=main" in page.locator("#header .label").text_content()
    row = page.locator("#environment tr", has_text="DEPLOY_TOKEN")
    assert row.locator("td.redacted").text_content() == "redacted"
    metric = page.locator("#events tr", has_text="binary_size")
    assert metric.count() == 1 and "4242" in metric.text_content()
    assert page.locator("#stdout .line").all_text_contents() == ["built"]


def test_big_folded_flame_page_is_pruned_but_keeps_widths(
    tmp_path: Path, pages: Callable[[Path], Any]
) -> None:
    """Folded input goes through the fast path; frames too narrow to see at 10x zoom are
    left out, and the page still gives every kept frame its full width."""
    import random

    rng = random.Random(4)
    lines = []
    for i in range(3000):
        tail = [f"leaf{i}_{d}" for d in range(rng.randrange(1, 4))]
        lines.append(f"main;work{i % 7};{';'.join(tail)} {rng.randrange(1, 5)}")
    lines.append("main 5000000")
    folded = tmp_path / "big.folded"
    folded.write_text("\n".join(lines) + "\n")
    full = StackTree()
    read_lines(lines, full)
    html = tmp_path / "big.html"
    buildtape("flame", folded, "-o", html, check=True)
    page = pages(html)
    kept = page.evaluate("() => window.buildtape.flame.n")
    frames, todo = 0, [full.root]
    while todo:
        frames += 1
        todo += todo.pop().children.values()
    assert kept < frames / 2  # pruned
    assert "left out" in page.locator("header").text_content()
    totals = page.evaluate(
        """() => { const f = window.buildtape.flame, out = {};
                   for (let i = 0; i < f.n; i++) if (f.d.depth[i] <= 2) out[f.name(i)] = f.d.total[i];
                   return out; }"""
    )
    assert totals["all"] == full.total
    assert totals["main"] == full.root.children["main"].total
    for name, frame in full.root.children["main"].children.items():
        assert totals[name] == frame.total
