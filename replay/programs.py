"""What a program is, whatever it was called: the name diff matches steps by when the name
they ran under differs between two builds.

A build that runs ``gcc-12`` where the other ran ``cc`` (``CC=gcc-12``, a symlink or a
ccache-style wrapper on PATH that ``exec``s the real compiler, another compiler altogether)
still compiles the same source into the same object: the two are one step, changed, not a
step removed and another added. So compiler drivers go by their role, whatever the name,
target prefix or version suffix (``x86_64-linux-gnu-gcc-12``, ``clang-14``, ``cc``: a C
compiler ``cc``; ``g++``, ``clang++``: ``c++``), a launcher in front of one
(``ccache gcc``) by the program it launches, clang's compiler proper (``clang -cc1``) as
gcc's (``cc1``), and any other program by its executable's sha256 when the tape has it (the
same binary under two names), else by its name.
"""

from __future__ import annotations

import posixpath
import re

# Programs that run the compiler named by their first argument.
_LAUNCHERS = frozenset({"ccache", "sccache", "distcc", "icecc", "buildcache"})
# An optional target prefix (x86_64-linux-gnu-), the driver, an optional version (-12, -14.0).
_PREFIX = r"(?:[A-Za-z0-9_.]+-)*"
_VERSION = r"(?:-[0-9][0-9.]*)?"
_C_DRIVER = re.compile(_PREFIX + r"(?:gcc|cc|clang|c89|c99)" + _VERSION + r"(?:-gcc)?")
_CXX_DRIVER = re.compile(_PREFIX + r"(?:g\+\+|c\+\+|clang\+\+)" + _VERSION)


def program_role(argv: list[str], exe: str, exe_sha256: str | None) -> str:
    """The name a step's program is matched by across two builds (see the module's doc)."""
    words = argv or [exe]
    name = posixpath.basename(words[0])
    if name in _LAUNCHERS and len(words) > 1 and not words[1].startswith("-"):
        words = words[1:]
        name = posixpath.basename(words[0])
    if _C_DRIVER.fullmatch(name) or _CXX_DRIVER.fullmatch(name):
        if len(words) > 1 and words[1] == "-cc1":
            return "cc1"  # clang's compiler proper, run by its driver as gcc runs cc1
        if len(words) > 1 and words[1] == "-cc1as":
            return "as"
        return "c++" if _CXX_DRIVER.fullmatch(name) else "cc"
    if exe_sha256:
        return "sha256:" + exe_sha256[:16]
    return name
