"""What a CI pipeline takes from a tape, through the real CLI on real builds: the
compilation database (read back by a real clang tool), the JUnit report (validated against
an XSD by a real validator) and the Markdown summary (rendered by GitHub's own renderer),
also for tapes whose text is hostile."""

from __future__ import annotations

import html.parser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.conftest import buildtape

XSD = Path(__file__).with_name("junit.xsd")
SPEC_KEYS = {"directory", "file", "arguments"}  # "command" or "arguments" is required

needs_xmllint = pytest.mark.skipif(
    shutil.which("xmllint") is None, reason="xmllint (Debian libxml2-utils) is not installed"
)
needs_cmark = pytest.mark.skipif(
    shutil.which("cmark-gfm") is None, reason="cmark-gfm (GitHub's renderer) is not installed"
)


def record(ws: Path, tape: Path, *argv: str, trace: str = "auto") -> None:
    out = buildtape("record", "-q", "--trace", trace, "-o", tape, "--", *argv, cwd=ws)
    assert tape.is_file(), out.stderr


def processes(tape: Path) -> list[dict[str, Any]]:
    view = json.loads(buildtape("show", tape, "--format", "json", check=True).stdout)
    procs: list[dict[str, Any]] = view["processes"]
    return procs


def compile_db(tape: Path, out: Path) -> list[dict[str, Any]]:
    buildtape("export", "--format", "compile-commands", tape, "-o", out, check=True)
    entries: list[dict[str, Any]] = json.loads(out.read_text())
    for e in entries:
        assert set(e) >= SPEC_KEYS and Path(e["directory"]).is_absolute()
        assert all(isinstance(a, str) for a in e["arguments"])
    return entries


# -- compile_commands.json ---------------------------------------------------------------


def test_compile_db_of_a_make_build_holds_every_compile_and_clang_tidy_reads_it(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make")
    # The flag the database must carry: without it, main.c does not compile.
    main = ws / "main.c"
    main.write_text("#ifndef FROM_THE_BUILD\n#error flags not taken from the build\n#endif\n"
                    + main.read_text())  # fmt: skip
    tape = tmp_path / "make.tape"
    record(ws, tape, "make", "-j2", "CFLAGS=-O2 -Wall -DFROM_THE_BUILD")
    compiles = [
        p for p in processes(tape) if p["argv"][0] == "cc" and "-c" in p["argv"]
    ]  # fmt: skip
    assert len(compiles) == 6  # one per source: the link, cc1, as, collect2, ld are not
    entries = compile_db(tape, ws / "compile_commands.json")
    assert sorted((e["directory"], e["file"], e["output"], e["arguments"]) for e in entries) == sorted(
        (p["cwd"], str(ws / p["argv"][p["argv"].index("-c") + 1]),
         str(ws / p["argv"][p["argv"].index("-o") + 1]), p["argv"])
        for p in compiles
    )  # fmt: skip
    assert all(e["directory"] == str(ws) for e in entries)

    tidy = shutil.which("clang-tidy")
    if tidy is None:
        pytest.skip("clang-tidy (Debian clang-tidy) is not installed; checked with json only")
    run = subprocess.run(
        [tidy, "-p", str(ws), "--checks=-*,bugprone-assert-side-effect", "--quiet", str(main)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "flags not taken from the build" not in run.stdout + run.stderr
    # Without the database the same check fails: the test sees the flags arrive.
    (ws / "compile_commands.json").unlink()
    bare = subprocess.run(
        [tidy, "--checks=-*,bugprone-assert-side-effect", str(main), "--"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert "flags not taken from the build" in bare.stdout + bare.stderr


def test_compile_db_of_a_cmake_ninja_build_matches_the_one_cmake_writes(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("cmake-ninja")
    tape = tmp_path / "cmake.tape"
    record(ws, tape, "sh", "build.sh", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON")
    theirs = json.loads((ws / "build" / "compile_commands.json").read_text())
    assert len(theirs) == 3
    ours = compile_db(tape, tmp_path / "compile_commands.json")
    by_file = {e["file"]: e for e in ours if e["directory"] == str(ws / "build")}
    recorded = {tuple(p["argv"]) for p in processes(tape) if p["cwd"] == str(ws / "build")}
    for entry in theirs:
        mine = by_file[entry["file"]]
        assert tuple(mine["arguments"]) in recorded  # the compile as it ran...
        # ...which is cmake's command plus the dependency-file flags cmake leaves out.
        rest = iter(mine["arguments"])
        assert all(arg in rest for arg in shlex.split(entry["command"]))
        assert [a for a in mine["arguments"] if a.startswith("-M")] == ["-MD", "-MT", "-MF"]
        out = mine["arguments"][mine["arguments"].index("-o") + 1]
        assert mine["output"] == str(ws / "build" / out)
    assert set(by_file) == {e["file"] for e in theirs}
    # cmake's own probe compiles ran too, in its scratch directories; nothing else did.
    others = [e for e in ours if e["directory"] != str(ws / "build")]
    assert others and all("/CMakeFiles/" in e["directory"] for e in others)


def test_compile_db_recognises_drivers_by_name_and_skips_probes(tmp_path: Path) -> None:
    """Cross and versioned driver names (real gcc and g++ under those names), -E and -M
    probes, --version, link-only and multi-source commands, gcc-ar: real processes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, real in (("x86_64-linux-gnu-gcc-12", "gcc"), ("clang++-15", "g++"),
                       ("gcc-ar", "gcc-ar")):  # fmt: skip
        found = shutil.which(real)
        assert found is not None, f"{real} is part of the toolchain the tests use"
        (bin_dir / name).symlink_to(found)
    (tmp_path / "inc").mkdir()
    (tmp_path / "a.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "b.cpp").write_text("int b() { return 1; }\n")
    (tmp_path / "c.cc").write_text("int c() { return 2; }\n")
    script = "; ".join([
        "x86_64-linux-gnu-gcc-12 -c -I inc a.c -o a.o",
        "clang++-15 -std=c++17 -c b.cpp c.cc",
        "x86_64-linux-gnu-gcc-12 -E a.c >/dev/null",
        "x86_64-linux-gnu-gcc-12 -MM a.c >/dev/null",
        "x86_64-linux-gnu-gcc-12 --version >/dev/null",
        "x86_64-linux-gnu-gcc-12 -o app a.o",
        "gcc-ar rcs lib.a b.o",
    ])  # fmt: skip
    tape = tmp_path / "names.tape"
    record(tmp_path, tape, "sh", "-ec", f"PATH={bin_dir}:$PATH; {script}")
    assert (tmp_path / "app").is_file() and (tmp_path / "lib.a").is_file()
    entries = compile_db(tape, tmp_path / "db.json")
    got = [(Path(e["file"]).name, e["arguments"], Path(e.get("output", "")).name) for e in entries]
    assert got == [
        ("a.c", ["x86_64-linux-gnu-gcc-12", "-c", "-I", "inc", "a.c", "-o", "a.o"], "a.o"),
        ("b.cpp", ["clang++-15", "-std=c++17", "-c", "b.cpp"], "b.o"),
        ("c.cc", ["clang++-15", "-std=c++17", "-c", "c.cc"], "c.o"),
    ]
    assert all(e["directory"] == str(tmp_path) for e in entries)


# -- JUnit ---------------------------------------------------------------------------------


def junit(tape: Path, out: Path) -> ET.Element:
    buildtape("export", "--format", "junit", tape, "-o", out, check=True)
    if shutil.which("xmllint") is not None:
        check = subprocess.run(
            ["xmllint", "--noout", "--schema", str(XSD), str(out)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
    return ET.parse(out).getroot()


@needs_xmllint
def test_junit_of_a_failing_build_validates_and_names_the_first_error(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make-failing")
    tape = tmp_path / "fail.tape"
    record(ws, tape, "make", "-k", "-j2")
    root = junit(tape, tmp_path / "junit.xml")
    cases = root.findall("testsuite/testcase")
    compiles = [p for p in processes(tape) if p["argv"][0] == "cc" and "-c" in p["argv"]]
    assert sorted(c.get("name", "") for c in cases) == sorted(
        f"#{p['id']} {shlex.join(p['argv'])}" for p in compiles
    )
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name", "").split(" ", 1)[1] for c in failed] == [
        "cc -O2 -Wall -c parse.c -o parse.o"
    ]
    failure = failed[0].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.startswith("parse.c:") and "error:" in message
    assert "undeclared_total" in (failure.text or "")
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == (str(len(compiles)), "1")
    # The validator is real: the same file without a required attribute is refused.
    del cases[0].attrib["classname"]
    broken = tmp_path / "broken.xml"
    ET.ElementTree(root).write(broken)
    check = subprocess.run(
        ["xmllint", "--noout", "--schema", str(XSD), str(broken)], capture_output=True
    )
    assert check.returncode != 0 and b"classname" in check.stderr


HOSTILE = "\x1b[31m<b>&amp;</b> ]]> \x01\x07\x1b]0;title\x07 `x` | y\x7f\x9b2J"


@needs_xmllint
def test_junit_is_valid_xml_whatever_the_tape_holds(tmp_path: Path) -> None:
    tape = tmp_path / "hostile.tape"
    script = f"printf '%s\\n' '{HOSTILE}' >&2; exit 3"
    record(tmp_path, tape, "sh", "-c", script, "<sh>&\"'", trace="none")
    root = junit(tape, tmp_path / "junit.xml")
    (case,) = root.findall("testsuite/testcase")
    assert "<sh>&\"'" in case.get("name", "")
    failure = case.find("failure")
    assert failure is not None
    text = (failure.text or "") + failure.get("message", "")
    assert "<b>&amp;</b> ]]>" in text  # kept as text, escaped by the XML writer
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text)


@needs_xmllint
def test_junit_failed_probes_of_a_successful_build_pass(tmp_path: Path) -> None:
    tape = tmp_path / "ok.tape"
    record(tmp_path, tape, "sh", "-c", "sh -c 'exit 1' || true; sh -c 'sleep 0.01'")
    root = junit(tape, tmp_path / "junit.xml")
    cases = root.findall("testsuite/testcase")
    assert len(cases) == 2 and all(c.find("failure") is None for c in cases)
    notes = [c.findtext("system-out") for c in cases]
    assert "exit 1: an expected failure (the build succeeded)" in notes


# -- Markdown ------------------------------------------------------------------------------


class _Html(html.parser.HTMLParser):
    """Elements and the text of table cells, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.cells: list[list[str]] = []
        self._cell: list[str] | None = None
        self.codes: list[str] = []
        self._code: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.cells.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "code":
            self._code = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "code" and self._code is not None:
            self.codes.append("".join(self._code))
            self._code = None

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._code):
            if sink is not None:
                sink.append(data)


def rendered(markdown: str) -> _Html:
    # --unsafe: raw HTML passes through, so an escaping mistake would show as a tag.
    out = subprocess.run(
        ["cmark-gfm", "--unsafe", "-e", "table", "-e", "autolink", "-e", "strikethrough"],
        input=markdown, capture_output=True, text=True, check=True,
    )  # fmt: skip
    page = _Html()
    page.feed(out.stdout)
    return page


@needs_cmark
def test_markdown_summary_of_a_failing_build(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make-failing")
    tape = tmp_path / "fail.tape"
    record(ws, tape, "make", "-k", "-j2")
    md = buildtape("show", tape, "--format", "markdown", check=True).stdout.decode()
    parse = next(p for p in processes(tape) if p["argv"][-1] == "parse.o" and p["argv"][0] == "cc")
    assert f"#{parse['id']} `cc -O2 -Wall -c parse.c -o parse.o` (exit 1)" in md
    # gcc quotes with \u2018 \u2019 in a UTF-8 locale and with ' in C (LC_ALL=C on some CI).
    assert re.search("error: expected ([\u2018']);[\u2019'] before \\1undeclared_total", md), md
    assert (
        f"buildtape replay {tape}\n" in md
        and f"buildtape replay {tape} --step {parse['id']}\n" in md
    )
    page = rendered(md)
    rows = {r[0]: r[1] for r in page.cells if len(r) == 2}
    assert rows["status"] == "failed (exit 2)"
    slow = [r for r in page.cells if len(r) == 3 and r[1].endswith(" s")]
    assert len(slow) == 5  # the five slowest steps, one row each
    assert "make -k -j2" in page.codes


@needs_cmark
def test_markdown_summary_escapes_everything_from_the_tape(tmp_path: Path) -> None:
    tape = tmp_path / "hostile.tape"
    evil = "<script>alert(1)</script> | `` ` ``</td></tr><img src=x onerror=alert(1)> [a](javascript:x) *b*"
    buildtape("record", "-q", "--trace", "none", "--label", f"note={evil}", "-o", tape,
              "--", "sh", "-c", f"echo 'x.c:1: error: {evil}\x1b[31m' >&2; exit 1", evil,
              cwd=tmp_path)  # fmt: skip
    md = buildtape("show", tape, "--format", "markdown", check=True).stdout.decode()
    assert "\x1b" not in md
    page = rendered(md)
    assert not {"script", "img", "a", "em"} & set(page.tags)
    # Each table row still has its own cells, holding the text as it was.
    assert all(len(r) == 2 for r in page.cells[:6])
    labels = next(r for r in page.cells if r[0] == "labels")
    assert labels[1] == f"note={evil}"
    slow = next(r for r in page.cells if len(r) == 3 and r[0].startswith("#"))
    assert evil in slow[0]
    assert any(evil in code for code in page.codes)


# -- the recipes of docs/ci.md -------------------------------------------------------------

CI_DOC = Path(__file__).resolve().parent.parent / "docs" / "ci.md"


def recipe_commands(section: str) -> list[str]:
    """The buildtape command lines of the YAML block under ``## section`` in docs/ci.md."""
    text = CI_DOC.read_text()
    block = text.split(f"## {section}\n", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    out = []
    for line in block.splitlines():
        line = line.strip().removeprefix("- ").removeprefix("run: ").strip()
        if line.startswith("buildtape "):
            out.append(line)
    return out


@needs_xmllint
@pytest.mark.parametrize(
    ("section", "env"),
    [
        ("GitHub Actions", {"GITHUB_REF_NAME": "main"}),
        ("GitLab CI", {"CI_COMMIT_REF_NAME": "main"}),
    ],
)
def test_the_ci_recipes_run_as_documented(
    fixture_copy: Callable[..., Path], tmp_path: Path, section: str, env: dict[str, str]
) -> None:
    ws = fixture_copy("c-make")
    commands = recipe_commands(section)
    assert [c.split()[1] for c in commands].count("record") == 1 and any(
        " check " in c for c in commands
    )
    summary = tmp_path / "step-summary.md"
    full_env = {**os.environ, **env, "GITHUB_STEP_SUMMARY": str(summary)}
    for command in commands:
        # The recipes call the installed `buildtape`; here it is this checkout's.
        line = command.replace("buildtape ", f"{shlex.quote(sys.executable)} -m buildtape ", 1)
        run = subprocess.run(
            ["sh", "-c", line], cwd=ws, env=full_env, capture_output=True, text=True
        )
        assert run.returncode == 0, (command, run.stderr)
    written = (
        summary.read_text()
        if section == "GitHub Actions"
        else (ws / "buildtape-summary.md").read_text()
    )
    assert written.startswith("### ✅ buildtape: `make -j") and "#### Slowest steps" in written
    assert (ws / "build.html").is_file()
    check = subprocess.run(
        ["xmllint", "--noout", "--schema", str(XSD), str(ws / "buildtape-junit.xml")]
    )
    assert check.returncode == 0
    assert len(json.loads((ws / "compile_commands.json").read_text())) == 6
    # check judged this build, found by its branch and label.
    assert cli_branch_builds(ws, "main") == 1


def cli_branch_builds(ws: Path, branch: str) -> int:
    out = buildtape(
        "stats", "--branch", branch, "--label", "job=linux", "--format", "json", cwd=ws, check=True
    )
    builds: int = json.loads(out.stdout)["builds"]
    return builds


def test_compile_db_on_stdout_carries_no_raw_control_characters(tmp_path: Path) -> None:
    """A flag holding ESC and CSI (C1) reaches the database as JSON escapes: printed to a
    terminal, it cannot act, and it parses back to the recorded argument."""
    (tmp_path / "a.c").write_text("int a(void) { return 0; }\n")
    flag = "-DMSG=\x1b[2J\u009b2J"
    tape = tmp_path / "ctl.tape"
    record(tmp_path, tape, "sh", "-c", 'cc -c a.c -o a.o "$0"', flag)
    out = buildtape("export", "--format", "compile-commands", tape, check=True).stdout
    assert b"\x1b" not in out and "\u009b".encode() not in out
    (entry,) = json.loads(out)
    assert entry["arguments"] == ["cc", "-c", "a.c", "-o", "a.o", flag]
