"""A build's colours (recorder/ansi.py): kept as colour where colour is wanted, stripped
elsewhere, and never a way for a tape to put another control sequence on a terminal or
into a page. End to end on real builds run under a real pty, through the real CLI."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recorder import ansi
from recorder.tape import open_tape
from tests.browser import needs_browser
from tests.conftest import buildtape

ESC = "\x1b"
# What buildtape itself writes when it colours: SGR and nothing else.
_OUR_SGR = re.compile(r"\x1b\[[0-9;]*m")


def in_pty(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Run ``args`` with a pty as its stdin, stdout and stderr (a terminal session)."""
    # A terminal session names its terminal: gcc colours only where TERM is set and not
    # dumb, and CI runs the tests with no TERM at all.
    session = dict(os.environ if env is None else env)
    if session.get("TERM", "dumb") == "dumb":
        session["TERM"] = "xterm"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args, cwd=cwd, env=session, stdin=slave, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    out = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            raise AssertionError(f"{args} wrote nothing for 120 s")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the pty
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=120), bytes(out)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "buildtape", *args]


# --- the parser ---------------------------------------------------------------------------


def test_sgr_forms_become_styles() -> None:
    text = (
        "\x1b[01m\x1b[Kmul.c:2:37:\x1b[m\x1b[K \x1b[01;31m\x1b[Kerror: \x1b[m\x1b[Kx"
        "\x1b[38;5;196ma\x1b[38;2;1;2;300mb\x1b[38:2::9:8:7mc\x1b[48:5:20;4md\x1b[0;7me\x1b[27;24m"
    )
    got = [(r.text, r.style) for r in ansi.runs(text)]
    assert got[0] == ("mul.c:2:37:", ansi.Style(bold=True))
    assert got[2] == ("error: ", ansi.Style(fg="1", bold=True))
    assert got[3] == ("x", ansi.Style())
    assert got[4] == ("a", ansi.Style(fg="196"))
    assert got[5] == ("b", ansi.Style(fg="#0102ff"))  # 300 clamps to 255
    assert got[6] == ("c", ansi.Style(fg="#090807"))
    assert got[7] == ("d", ansi.Style(fg="#090807", bg="20", underline=True))
    assert got[8] == ("e", ansi.Style(inverse=True))
    assert ansi.plain(text) == "mul.c:2:37: error: xabcde"


def test_other_controls_are_made_visible_not_obeyed() -> None:
    hostile = "a\x1b]0;title\x07b\x1b]52;c;ZXZpbA==\x07c\x1b[2J\x1b[1;1Hd\re\x9b31mf\x1b[8mg"
    out = ansi.plain(hostile)
    assert out == "a\\e]0;title\\x07b\\e]52;c;ZXZpbA==\\x07c\\e[2J\\e[1;1Hd\\re\\x9b31mfg"
    coloured = ansi.terminal(hostile + "\x1b[31mred\n", colour=True)
    # Only SGR that buildtape wrote itself is left; concealed text (SGR 8) is shown.
    assert ESC not in _OUR_SGR.sub("", coloured)
    assert "\x07" not in coloured and "\r" not in coloured and "\x9b" not in coloured
    assert coloured.endswith("\x1b[0;31mred\x1b[0m\n")


def test_a_sequence_split_across_chunks_is_joined() -> None:
    stream = ansi.TerminalStream(colour=True)
    text = "\x1b[01;31merror\x1b[0m ok \x1b]0;t\x07"
    out = "".join(stream.feed(text[i : i + 3]) for i in range(0, len(text), 3)) + stream.finish()
    assert out == "\x1b[0;1;31merror\x1b[0m ok \\e]0;t\\x07"
    plain = ansi.TerminalStream(colour=False)
    assert plain.feed("\x1b[3") + plain.feed("1mx\x1b") + plain.finish() == "x\\e"


# --- a real failing C build under a pty -----------------------------------------------------


@pytest.fixture(scope="module")
def coloured_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The failing fixture built by ``make`` under a pty: gcc colours its diagnostics."""
    import shutil

    from tests.conftest import FIXTURES

    root = tmp_path_factory.mktemp("pty")
    ws = root / "ws"
    shutil.copytree(FIXTURES / "c-make-failing", ws)
    tape = root / "fail.tape"
    code, out = in_pty(cli("record", "-o", str(tape), "--", "make"), ws)
    assert code == 2, out.decode(errors="replace")
    assert b"\x1b[01;31m\x1b[Kerror: " in out, "gcc did not colour its output under the pty"
    return tape


def test_first_error_is_found_through_colour(coloured_tape: Path) -> None:
    proc = buildtape("show", coloured_tape, check=True)
    text = proc.stdout.decode()
    assert ESC not in text  # stdout is a pipe here: plain text
    assert "first error: parse.c:9:25: error: expected" in text
    assert "> parse.c:9:25: error: expected" in text


def test_show_keeps_colour_on_a_terminal_unless_no_color(coloured_tape: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    code, out = in_pty(cli("show", str(coloured_tape)), coloured_tape.parent, env)
    assert code == 0
    text = out.decode()
    assert "\x1b[0;1;31merror: \x1b[0m" in text
    assert ESC not in _OUR_SGR.sub("", text)
    code, out = in_pty(
        cli("show", str(coloured_tape)), coloured_tape.parent, env | {"NO_COLOR": "1"}
    )
    assert code == 0 and ESC not in out.decode() and "parse.c:9:25: error:" in out.decode()


def test_report_shows_colour_as_classes_never_escapes(coloured_tape: Path) -> None:
    html_path = coloured_tape.with_suffix(".html")
    buildtape("report", coloured_tape, "-o", html_path, check=True)
    html = html_path.read_text()
    assert ESC not in html and "[01;31m" not in html and "[K" not in html
    # The first error is gcc's, and it is red in the excerpt and in the Output section.
    assert '<mark class="error-line">parse.c:9:25: error: expected' in html
    assert html.count('<span class="ansi-fg-1 ansi-bold">error: </span>') == 2
    assert 'style="' not in html.split('id="streams"')[1]


@needs_browser
def test_report_error_is_red_in_a_browser(coloured_tape: Path, browser: Any) -> None:
    html_path = coloured_tape.with_suffix(".browser.html")
    buildtape("report", coloured_tape, "-o", html_path, check=True)
    page = browser.new_page(bypass_csp=True)
    try:
        page.goto(html_path.as_uri())
        text = page.inner_text("body")
        assert ESC not in text and "[01;31m" not in text
        colours = page.evaluate(
            """() => {
              const err = [...document.querySelectorAll('#stderr .ansi-fg-1')]
                .find((e) => e.textContent === 'error: ');
              const bold = document.querySelector('#stderr .ansi-bold:not(.ansi-fg-1)');
              const line = document.querySelector('#stderr-0');
              return { err: getComputedStyle(err).color, errWeight: getComputedStyle(err).fontWeight,
                       text: getComputedStyle(document.querySelector('#stderr')).color,
                       plain: getComputedStyle(line).color, bold: getComputedStyle(bold).color };
            }"""
        )
    finally:
        page.close()
    assert colours["err"] != colours["text"]
    assert colours["err"] == "rgb(207, 34, 46)"
    assert int(colours["errWeight"]) >= 700
    assert colours["bold"] == colours["plain"]  # bold without colour keeps the text colour


# --- a tape whose output is hostile ----------------------------------------------------------

_HOSTILE = (
    r"printf '\033]0;pwned\007\033]52;c;ZXZpbA==\007\033[2J\033[H\033[31mred %s\033[0m\r"
    r"over\n' {word} >&2; exit 1"
)


def _hostile_tape(root: Path, name: str, word: str) -> Path:
    ws = root / name
    ws.mkdir()
    tape = root / f"{name}.tape"
    buildtape("record", "-o", tape, "--", "sh", "-c", _HOSTILE.format(word=word), cwd=ws)
    assert tape.exists()
    return tape


def _no_foreign_controls(text: str) -> None:
    """Nothing but buildtape's own SGR: no OSC, no cursor movement, no CR or BEL."""
    rest = _OUR_SGR.sub("", text)
    assert ESC not in rest and "\x07" not in rest and "\r" not in rest, ascii(text)


def test_hostile_output_is_neutralised_everywhere(tmp_path: Path) -> None:
    a = _hostile_tape(tmp_path, "a", "one")
    b = _hostile_tape(tmp_path, "b", "two")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}

    shown = buildtape("show", a, check=True).stdout.decode()
    assert ESC not in shown and "\\e]52;c;ZXZpbA==\\x07" in shown
    code, out = in_pty(cli("show", str(a)), tmp_path, env)
    _no_foreign_controls(out.decode().replace("\r\n", "\n"))
    assert "\x1b[0;31mred one" in out.decode()

    played = buildtape("replay", "--playback", a, check=True)
    assert ESC.encode() not in played.stderr and b"\\e]0;pwned\\x07" in played.stderr
    code, out = in_pty(cli("replay", "--playback", str(a)), tmp_path, env)
    assert code == 0
    _no_foreign_controls(out.decode().replace("\r\n", "\n"))
    assert "\x1b[0;31mred one" in out.decode()

    buildtape("report", a, "-o", tmp_path / "a.html", check=True)
    report = (tmp_path / "a.html").read_text()
    assert ESC not in report and "\x07" not in report and "\r" not in report
    # The stream's lines end at CR too (str.splitlines), so "over" is a line of its own.
    assert '\\e[2J\\e[H<span class="ansi-fg-1">red one</span></span>' in report

    diff = buildtape("diff", a, b, "--format", "html", "-o", tmp_path / "d.html")
    assert diff.returncode == 1, diff.stderr
    page = (tmp_path / "d.html").read_text()
    assert ESC not in page and "\x07" not in page
    # diff compares words (colour is normalised away, as a CI run has none): the page shows
    # the changed line plain, never its escape bytes.
    assert "red two" in page
    assert "\\e]52;c;ZXZpbA==\\x07" in page


def test_html_runs_are_classes_with_rules_only_for_colours_used() -> None:
    from reports.ansi_html import Colours

    colours = Colours()
    line = colours.line("\x1b[1;31mred\x1b[0m <b>&\x1b[38;5;196mx\x1b[48;2;255;136;0my\x1b[7mz")
    assert str(line) == (
        '<span class="ansi-fg-1 ansi-bold">red</span> &lt;b&gt;&amp;'
        '<span class="ansi-fg-196">x</span>'
        '<span class="ansi-fg-196 ansi-bg-xff8800">y</span>'
        '<span class="ansi-fg-xff8800 ansi-bg-196">z</span>'
    )
    assert colours.css().splitlines() == [
        ".ansi-bg-xff8800 { background-color: #ff8800; }",
        ".ansi-bg-196 { background-color: #ff0000; }",
        ".ansi-fg-xff8800 { color: #ff8800; }",
        ".ansi-fg-196 { color: #ff0000; }",
    ]


def test_a_build_in_a_terminal_and_the_same_build_in_a_pipe_do_not_differ(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    """gcc colours its diagnostics on a terminal only: diff compares the words."""
    ws = fixture_copy("c-make-failing")
    coloured, piped = tmp_path / "tty.tape", tmp_path / "pipe.tape"
    in_pty(cli("record", "-q", "-o", str(coloured), "--", "make"), ws)
    subprocess.run(["make", "clean"], cwd=ws, capture_output=True)
    buildtape("record", "-q", "-o", piped, "--", "make", cwd=ws)
    with open_tape(coloured) as t:
        assert b"\x1b[" in t.stream("stderr")  # the terminal run really was coloured
    out = buildtape("diff", "--format", "json", coloured, piped)
    report = json.loads(out.stdout)
    assert "stderr" not in report["streams"], report["streams"]
