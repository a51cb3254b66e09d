"""Toolchain version lines: one binary run under two names has two version lines.

``cc`` and ``gcc`` are usually one file (Debian: alternatives symlinks to the same gcc),
so their sha256 is the same while ``--version`` prints "cc (...)" under one name and
"gcc (...)" under the other. The cache must keep both, or replay reports false drift.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from recorder.hashcache import HashCache
from recorder.tape import open_tape
from recorder.toolchain import fingerprint
from tests.conftest import buildtape

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")


def symlink_pair(tmp_path: Path) -> Path:
    """A directory where ``cc`` and ``gcc`` are symlinks to the same real gcc binary."""
    assert GCC is not None
    real = os.path.realpath(GCC)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("cc", "gcc"):
        (bin_dir / name).symlink_to(real)
    return bin_dir


@needs_gcc
def test_symlinked_cc_and_gcc_keep_their_own_version_lines(tmp_path: Path) -> None:
    bin_dir = symlink_pair(tmp_path)
    cache_file = tmp_path / "cache" / "hashes.json"
    for _ in range(2):  # computed, then read back from the saved cache
        cache = HashCache(cache_file)
        tools = fingerprint([str(bin_dir / "gcc"), str(bin_dir / "cc")], cache)
        cache.save()
        by_name = {t.name: t for t in tools}
        assert set(by_name) == {"cc", "gcc"}
        assert by_name["cc"].sha256 == by_name["gcc"].sha256
        assert (by_name["cc"].version or "").startswith("cc ")
        assert (by_name["gcc"].version or "").startswith("gcc ")


@needs_gcc
def test_recording_a_build_that_runs_cc_and_gcc(tmp_path: Path) -> None:
    bin_dir = symlink_pair(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.c").write_text("int a(void) { return 1; }\n")
    (ws / "b.c").write_text("int b(void) { return 2; }\n")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
    }
    for run in range(2):  # the second recording takes both lines from the cache
        tape = tmp_path / f"t{run}.tape"
        rec = buildtape(
            "record", "--stacks", "none", "-o", tape, "--",
            "sh", "-c", "gcc -c a.c -o a.o && cc -c b.c -o b.o",
            cwd=ws, env=env,
        )  # fmt: skip
        assert rec.returncode == 0, rec.stderr
        with open_tape(tape) as t:
            tools = {t.path: t for t in t.manifest.toolchain}
        cc, gcc = tools[str(bin_dir / "cc")], tools[str(bin_dir / "gcc")]
        assert cc.sha256 == gcc.sha256
        assert (cc.version or "").startswith("cc ") and (gcc.version or "").startswith("gcc ")
