# ruff: noqa: RUF001  (gcc quotes names with curly quotes in a UTF-8 locale: its real output)
"""The first error of a failing step, recognised in real output of each tool.

fixtures/first-error/ holds what gcc 12, GNU ld 2.40, GNU make 4.3, CMake 3.25, ninja 1.11,
CPython 3.11, rustc, go 1.19 and javac printed for a real error (captured on Debian 12).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recorder.first_error import FirstError, first_error, step_names
from tests.conftest import FIXTURES, buildtape, needs_strace

CASES = [
    ("gcc.txt", "gcc", "bad.c:1:25: error: ‘undefined_var’ undeclared (first use in this function)"),
    ("gcc-fatal.txt", "gcc", "inc.c:1:10: fatal error: version.h: No such file or directory"),
    ("ld.txt", "ld", "link.c:(.text+0x5): undefined reference to `f'"),
    ("ld-lib.txt", "ld", "/usr/bin/ld: cannot find -lnotalib: No such file or directory"),
    ("make.txt", "gcc", "bad.c:1:25: error: ‘undefined_var’ undeclared (first use in this function)"),
    ("make-norule.txt", "make", "make: *** No rule to make target 'nothere.c', needed by 'all'.  Stop."),
    ("cmake-source.txt", "cmake", "CMake Error at CMakeLists.txt:3 (add_executable): Cannot find source file:"),
    ("cmake-message.txt", "cmake", "CMake Error at CMakeLists.txt:3 (message): zlib is required"),
    ("ninja.txt", "gcc", "bad.c:1:25: error: ‘undefined_var’ undeclared (first use in this function)"),
    ("ninja-noninja.txt", "ninja", "ninja: error: loading 'build.ninja': No such file or directory"),
    ("make-notfound.txt", "shell", "make: gcc: No such file or directory"),
    ("sh-notfound.txt", "shell", "/bin/sh: 1: protoc: not found"),
    ("python.txt", "python", "FileNotFoundError: [Errno 2] No such file or directory: '/nonexistent/x.json'"),
    ("rustc.txt", "rustc", "error[E0425]: cannot find value `y` in this scope"),
    ("rustc2.txt", "rustc", "error[E0308]: mismatched types"),
    ("go.txt", "go", "./main.go:4:2: x declared but not used"),
    ("javac.txt", "javac", "Hello.java:3: error: incompatible types: String cannot be converted to int"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "tool", "line"), CASES, ids=[c[0] for c in CASES])
def test_first_error_of_real_output(name: str, tool: str, line: str) -> None:
    lines = (FIXTURES / "first-error" / name).read_text().splitlines()
    found = first_error(lines)
    assert found is not None
    assert (found.tool, found.line) == (tool, line)


def test_paths_named_by_the_formats_that_name_them() -> None:
    def path(name: str) -> str | None:
        found = first_error((FIXTURES / "first-error" / name).read_text().splitlines())
        assert found is not None
        return found.path

    assert path("rustc.txt") == "rs/main.rs"
    assert path("python.txt") == "/tmp/fe/tb.py"
    assert path("cmake-message.txt") == "CMakeLists.txt"
    assert path("javac.txt") == "Hello.java"


def test_the_failing_steps_own_error_beats_a_parallel_steps() -> None:
    # Two compiles ran in parallel; vec.c's error came first, parse.c's compile failed too.
    lines = [
        "vec.c:3:1: warning: unused variable ‘x’",
        "vec.c:9:5: error: expected ‘;’ before ‘}’ token",
        "parse.c:12:8: error: ‘tok’ undeclared",
        "make: *** [Makefile:10: parse.o] Error 1",
    ]
    found = first_error(lines, step_names(["cc", "-c", "parse.c", "-o", "parse.o"]))
    assert found is not None and found.line == "parse.c:12:8: error: ‘tok’ undeclared"
    assert first_error(lines) == FirstError(1, lines[1], "gcc", "vec.c")


def test_a_warning_is_not_an_error() -> None:
    assert first_error(["main.c:3:1: warning: unused variable ‘x’ [-Wunused-variable]"]) is None


@needs_strace
def test_show_names_the_failing_steps_first_error_not_a_parallel_warning(
    fixture_copy: Callable[..., Path],
) -> None:
    ws = fixture_copy("c-make-failing")
    # A parallel compile that succeeds but prints a line that looks like an error.
    stats = ws / "stats.c"
    stats.write_text('#warning "error: the old API is deprecated"\n' + stats.read_text())
    tape = ws.parent / "fail.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", "-j2", "-k", cwd=ws)
    text = buildtape("show", tape, check=True).stdout.decode()
    [line] = [x for x in text.splitlines() if "first error:" in x]
    assert line.strip().startswith("first error: parse.c:9:25: error: expected")
    assert not [x for x in text.splitlines() if x.startswith("  > ") and "deprecated" in x]
