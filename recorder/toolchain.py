"""Version lines of the known tools a build ran: the readable half of the toolchain fingerprint."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterable

from recorder.hashcache import HashCache
from recorder.model import Tool

# gcc-12, x86_64-linux-gnu-gcc-12, python3.11, clang++-14, ld.bfd ...
_KNOWN = re.compile(
    r"^(?:[\w.]+-)*?(cc|c\+\+|gcc|g\+\+|clang|clang\+\+|ld|ld\.bfd|ld\.gold|ld\.lld|as|make|gmake"
    r"|ninja|cmake|meson|python|python3|rustc|cargo|go|node|javac|java)(?:-\d+(?:\.\d+)*|\.\d+)*$"
)
_VERSION_ARGS = {"go": ["version"], "javac": ["-version"], "java": ["-version"]}


def tool_name(exe: str) -> str | None:
    m = _KNOWN.match(os.path.basename(exe))
    return m.group(1) if m else None


def version_line(exe: str, name: str) -> str | None:
    args = _VERSION_ARGS.get(name, ["--version"])
    try:
        out = subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (out.stdout + "\n" + out.stderr).splitlines():
        if line.strip():
            return line.strip()
    return None


def fingerprint(executables: Iterable[str], cache: HashCache) -> list[Tool]:
    """One ``Tool`` per distinct known executable, sorted by name then path."""
    tools = []
    for exe in sorted(set(executables)):
        name = tool_name(exe)
        found = cache.sha256(exe) if name is not None else None
        if name is None or found is None:
            continue
        digest = found[0]
        run_as = os.path.basename(exe)
        version = cache.version(digest, run_as, functools.partial(version_line, exe, name))
        tools.append(Tool(name, exe, digest, version))
    return sorted(tools, key=lambda t: (t.name, t.path))
