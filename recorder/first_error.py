"""The first error in a build's output: the line a person should read first.

Each recogniser knows one tool's error format (fixtures/first-error/ holds real output of
each): gcc and clang (``file:line:col: error:``, ``fatal error:``), ld (``undefined
reference``, ``cannot find -l…``), make (``*** No rule to make target``), CMake (``CMake
Error at CMakeLists.txt:3 (message):`` with the message line that follows), ninja
(``ninja: error:``), a program make or the shell could not run (``make: gcc: No such file
or directory``, ``sh: 1: protoc: not found``), Python tracebacks (the exception line that
ends them), rustc (``error[E0425]:`` with the ``-->`` location below it), go
(``./main.go:5:2: …``) and javac (``Hello.java:3: error:``). A tool's own diagnostic beats
a driver's summary of it (``make: *** [...] Error 1``, ninja's ``FAILED:``, ``collect2:
error:``), and lines that name the failing step's files beat lines that do not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from recorder.ansi import strip_sgr

_DIAGNOSTIC, _SUMMARY, _GENERIC = 0, 1, 2


@dataclass(frozen=True)
class FirstError:
    index: int  # position in the lines given
    line: str  # one line, stripped, without colour (CMake's message joined to its header)
    tool: str
    path: str | None  # the file the error names, when its format names one


_LOCATED = re.compile(r"^(?P<path>[^\s:]+?):\d+(?::\d+)?: (?:fatal error|error): ")
_CC_DRIVER = re.compile(
    r"^(?:\S*/)?(?:cc|c\+\+|gcc|g\+\+|clang|clang\+\+)(?:-[\d.]+)?: (?:fatal )?error: "
)
_LD = re.compile(
    r"undefined reference to |^(?:\S*/)?ld(?:\.\w+)?: (?:cannot find|error)|multiple definition of "
)
_COLLECT2 = re.compile(r"^collect2: error: ")
_MAKE = re.compile(r"^(?:\S*/)?g?make(?:\[\d+\])?: \*\*\* (?P<what>.*)")
# A program that could not be run: make's and the shell's words for it.
_NOT_RUN = re.compile(
    r"^(?:\S*/)?(?:g?make(?:\[\d+\])?|sh|bash|dash)(?:: \d+| line \d+)?: \S+: "
    r"(?:(?:command )?not found|No such file or directory|Permission denied)"
)
_CMAKE = re.compile(r"^CMake Error(?: at (?P<path>[^:]+):\d+ \([^)]*\))?:?")
_NINJA_ERROR = re.compile(r"^ninja: error: ")
_NINJA_FAILED = re.compile(r"^FAILED: ")
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):")
_PY_FILE = re.compile(r'^\s+File "(?P<path>[^"]+)", line \d+')
# The line that ends a traceback: ``KeyError: 'x'``, ``pkg.mod.CustomError``, ``SystemExit: 2``.
_PY_EXC = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)\b|^[A-Z]\w*:")
_RUSTC = re.compile(r"^error(?:\[E\d+\])?: (?!aborting due to)")
_RUST_AT = re.compile(r"^\s*--> (?P<path>[^:]+):\d+:\d+")
_GO = re.compile(r"^(?P<path>(?:\./)?[^\s:]+\.go):\d+:\d+: ")
_JAVAC = re.compile(r"^(?P<path>[^\s:]+\.java):\d+: error: ")
_GENERIC_RE = re.compile(r"error[:\[]|\*\*\* |fatal:|FAILED", re.I)


def _candidates(lines: list[str]) -> Iterable[tuple[int, FirstError]]:
    """Every error line with its rank (smaller: more specific)."""
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip("\r\n")
        line = raw.strip()
        found: tuple[int, FirstError] | None = None
        if m := _JAVAC.match(raw):
            found = (_DIAGNOSTIC, FirstError(i, line, "javac", m.group("path")))
        elif m := _LOCATED.match(raw):
            found = (_DIAGNOSTIC, FirstError(i, line, "gcc", m.group("path")))
        elif m := _GO.match(raw):
            found = (_DIAGNOSTIC, FirstError(i, line, "go", m.group("path")))
        elif _RUSTC.match(raw):
            path = None
            for nxt in lines[i + 1 : i + 3]:
                if at := _RUST_AT.match(nxt):
                    path = at.group("path")
                    break
            found = (_DIAGNOSTIC, FirstError(i, line, "rustc", path))
        elif m := _CMAKE.match(raw):
            message = next((x.strip() for x in lines[i + 1 : i + 4] if x.strip()), "")
            text = f"{line} {message}" if message and line.endswith(":") else line
            found = (_DIAGNOSTIC, FirstError(i, text, "cmake", m.group("path")))
        elif _TRACEBACK.match(raw):
            path, j = None, i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
                if f := _PY_FILE.match(lines[j]):
                    path = f.group("path")
                j += 1
            if j < len(lines) and _PY_EXC.match(lines[j]):
                found = (_DIAGNOSTIC, FirstError(j, lines[j].strip(), "python", path))
                yield found
                i = j + 1
                continue
            found = (_GENERIC, FirstError(i, line, "python", path))
        elif _CC_DRIVER.match(raw):
            found = (_DIAGNOSTIC, FirstError(i, line, "gcc", None))
        elif _LD.search(raw):
            found = (_DIAGNOSTIC, FirstError(i, line, "ld", None))
        elif _NINJA_ERROR.match(raw):
            found = (_DIAGNOSTIC, FirstError(i, line, "ninja", None))
        elif _NOT_RUN.match(raw):
            found = (_DIAGNOSTIC, FirstError(i, line, "shell", None))
        elif m := _MAKE.match(raw):
            what = m.group("what")
            rank = _DIAGNOSTIC if not what.startswith("[") else _SUMMARY
            found = (rank, FirstError(i, line, "make", None))
        elif _COLLECT2.match(raw):
            found = (_SUMMARY, FirstError(i, line, "ld", None))
        elif _NINJA_FAILED.match(raw):
            found = (_SUMMARY, FirstError(i, line, "ninja", line[len("FAILED: ") :] or None))
        elif _GENERIC_RE.search(raw):
            found = (_GENERIC, FirstError(i, line, "generic", None))
        if found is not None:
            yield found
        i += 1


def _names(line: str, path: str | None, names: set[str]) -> bool:
    if not names:
        return False
    if path is not None and os.path.basename(path) in names:
        return True
    return any(n in line for n in names)


def first_error(lines: list[str], names: Iterable[str] = ()) -> FirstError | None:
    """The error to read first: naming one of ``names`` (a step's file names) when any
    does, the most specific kind, then the earliest."""
    wanted = {n for n in names if n}
    best: tuple[bool, int, int] | None = None
    chosen: FirstError | None = None
    for rank, err in _candidates([strip_sgr(x) for x in lines]):
        key = (not _names(err.line, err.path, wanted), rank, err.index)
        if best is None or key < best:
            best, chosen = key, err
    return chosen


def step_names(argv: list[str], files: Iterable[str] = ()) -> set[str]:
    """The file names a step's errors would mention: its arguments that look like files,
    and the files it read or wrote (basenames)."""
    out = {os.path.basename(a) for a in argv[1:] if "." in os.path.basename(a) and "\n" not in a}
    out |= {os.path.basename(f) for f in files}
    return {n for n in out if len(n) > 2 and not n.startswith("-")}
