"""The C and C++ compiles of a tape as a JSON compilation database (``compile_commands.json``,
https://clang.llvm.org/docs/JSONCompilationDatabase.html), what Bear writes for a build it
watched: editors and clang tools then get the exact flags a CI build used.

A compile is a process run as a compiler driver (``gcc``, ``g++``, ``cc``, ``c++``,
``clang``, ``clang++``, with a cross prefix such as ``x86_64-linux-gnu-`` and a version
suffix such as ``-12``) that compiles: it names a source file, and it is not a
preprocessor or dependency probe (``-E``, ``-M``, ``-MM``) or a ``--version`` / ``--help``
query. The driver's children (``cc1``, ``as``, ``collect2``, ``ld``) are not compiles, and
neither is a driver that a driver ran (``lto-wrapper``'s, a ccache symlink's). A link of
object files names no source and is left out. A compile of several sources gives one
entry per source, with the other sources left out of its arguments.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from recorder.model import Manifest, Process

# (cross-prefix-)name(-version): x86_64-linux-gnu-gcc-12, clang++-15, cc.
_DRIVER = re.compile(
    r"^(?:[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*-)?"
    r"(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(?:-\d+(?:\.\d+)*)?$"
)
# fmt: off
_SOURCE_SUFFIXES = frozenset({
    ".c", ".i", ".h", ".cc", ".cp", ".cxx", ".cpp", ".CPP", ".c++", ".C", ".ii", ".hh",
    ".hpp", ".hxx", ".m", ".mi", ".mm", ".M", ".mii",
})
# Options whose value is the next argument (so that value is not a source file).
_TAKES_VALUE = frozenset({
    "-o", "-x", "-I", "-D", "-U", "-A", "-include", "-imacros", "-iquote", "-isystem",
    "-idirafter", "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "-imultilib",
    "-MF", "-MT", "-MQ", "-L", "-l", "-B", "-T", "-u", "-z", "-e", "-Xlinker", "-Xassembler",
    "-Xpreprocessor", "-Xclang", "-aux-info", "-dumpbase", "-dumpbase-ext", "-dumpdir",
    "-wrapper", "--param", "-target", "-arch", "--sysroot", "-module-dependency-dir",
})
# Any of these and the driver compiles nothing (preprocesses, lists dependencies, answers).
_NOT_A_COMPILE = frozenset({
    "-E", "-M", "-MM", "--version", "-dumpversion", "-dumpmachine", "--help", "-###",
})
# fmt: on


@dataclass(frozen=True)
class CompileCommand:
    """One entry of the database: one source file as one compile compiled it."""

    # The compile's working directory (absolute, as recorded).
    directory: str
    # The source file, absolute (resolved against ``directory``).
    file: str
    # The compiler's argv as recorded, with other sources of the same command left out.
    arguments: list[str]
    # The object file it wrote, absolute (None when the compile named none and the driver
    # would not write one: -fsyntax-only).
    output: str | None
    # The recorded process (``buildtape ps`` ID), for a person who wants to look.
    process_id: int

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "directory": self.directory,
            "file": self.file,
            "arguments": self.arguments,
        }
        if self.output is not None:
            out["output"] = self.output
        return out


def is_compiler_driver(argv0: str) -> bool:
    """Whether a program named so is a C/C++ compiler driver."""
    return bool(_DRIVER.match(os.path.basename(argv0)))


def _sources(args: list[str]) -> list[int]:
    """Indexes of the source-file arguments of a driver's argv (argv[0] excluded)."""
    found, i = [], 1
    while i < len(args):
        arg = args[i]
        if arg in _TAKES_VALUE:
            i += 2
            continue
        if not arg.startswith("-") and os.path.splitext(arg)[1] in _SOURCE_SUFFIXES:
            found.append(i)
        i += 1
    return found


def _value_of(args: list[str], flag: str) -> str | None:
    """The last value of ``flag`` given as ``flag VALUE`` or ``flagVALUE``."""
    value = None
    for i, arg in enumerate(args[1:], start=1):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag) and len(arg) > len(flag) and flag == "-o":
            value = arg[len(flag) :]
    return value


def _default_output(args: list[str], source: str) -> str | None:
    """What the driver writes when no -o names it: ``x.o`` for ``-c x.c``, ``x.s`` for
    ``-S``, ``a.out`` for a compile and link, nothing for ``-fsyntax-only``."""
    stem = os.path.splitext(os.path.basename(source))[0]
    if "-fsyntax-only" in args:
        return None
    if "-c" in args:
        return stem + ".o"
    if "-S" in args:
        return stem + ".s"
    return "a.out"


def _entries(p: Process) -> list[CompileCommand]:
    args = p.argv
    if not args or not is_compiler_driver(args[0]) or _NOT_A_COMPILE.intersection(args):
        return []
    sources = _sources(args)
    out = []
    for index in sources:
        source = args[index]
        others = set(sources) - {index}
        own = [a for i, a in enumerate(args) if i not in others]
        named = _value_of(args, "-o")
        output = named if named is not None else _default_output(args, source)
        out.append(
            CompileCommand(
                directory=p.cwd,
                file=os.path.normpath(os.path.join(p.cwd, source)),
                arguments=own,
                output=None if output is None else os.path.normpath(os.path.join(p.cwd, output)),
                process_id=p.id,
            )
        )
    return out


def compile_commands(manifest: Manifest) -> list[CompileCommand]:
    """Every C/C++ compile of the build, in the order the compiles started; an entry
    recorded twice (the same directory, file, arguments and output) is kept once."""
    by_id = {p.id: p for p in manifest.processes}

    def inside_a_driver(p: Process) -> bool:
        parent = by_id.get(p.parent_id) if p.parent_id is not None else None
        while parent is not None:
            if parent.argv and is_compiler_driver(parent.argv[0]):
                return True
            parent = by_id.get(parent.parent_id) if parent.parent_id is not None else None
        return False

    seen: set[str] = set()
    out = []
    for p in sorted(manifest.processes, key=lambda p: (p.start_s, p.id)):
        if inside_a_driver(p):
            continue
        for entry in _entries(p):
            key = json.dumps(entry.to_json(), sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(entry)
    return out


# What json.dumps(ensure_ascii=False) leaves raw but a terminal or a UTF-8 file cannot take:
# DEL and the C1 controls (escape sequences), and lone surrogates (undecodable argv bytes).
_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def to_json(entries: list[CompileCommand]) -> str:
    """The database as ``compile_commands.json`` text: readable UTF-8, with every character
    that could act on a terminal written as a JSON escape (the same JSON)."""
    text = json.dumps([e.to_json() for e in entries], indent=2, ensure_ascii=False)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"
