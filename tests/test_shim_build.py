"""Compiling the interposer: a compile that fails, times out or is killed leaves nothing
behind, under the final name or a partial one, and says so in one sentence.

The compilers here are real processes on PATH (shell scripts standing in for a stuck or
crashing cc), run by the real CLI; the last test compiles with the machine's cc.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import buildtape, spawn_buildtape

# A cc that writes part of its output and starts a helper (as gcc starts cc1, as and ld)
# that keeps recreating it, then hangs or dies as $HOW says.
FAKE_CC = """\
#!/bin/sh
out=
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
( while :; do mkdir -p "$(dirname "$out")"; echo partial >> "$out"; sleep 0.1; done ) &
echo $$ > "$MARK"
sleep 0.3
case $HOW in
  hang) exec sleep 600 ;;
  killed) kill -9 $$ ;;
esac
"""


def fake_cc(tmp_path: Path, how: str) -> dict[str, str]:
    cc = tmp_path / "bin" / "cc"
    cc.parent.mkdir()
    cc.write_text(FAKE_CC)
    cc.chmod(0o755)
    return {
        **os.environ,
        "CC": str(cc),
        "HOW": how,
        "MARK": str(tmp_path / "cc.pid"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


def left_behind(tmp_path: Path) -> list[str]:
    """What the shim's compiles left in the cache (which holds other caches too)."""
    cache = tmp_path / "cache" / "buildtape"
    return sorted(p.name for p in cache.glob("btshim*")) if cache.exists() else []


def record_true(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    tape = tmp_path / "t.tape"
    return buildtape("record", "-q", "--trace", "preload", "-o", tape, "--", "true", env=env)


def test_a_compile_that_times_out_leaves_nothing(tmp_path: Path) -> None:
    env = fake_cc(tmp_path, "hang")
    env["BUILDTAPE_SHIM_TIMEOUT"] = "2"
    out = record_true(tmp_path, env)
    err = out.stderr.decode()
    assert out.returncode == 125, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("buildtape: error: --trace preload was asked for, but ")
    assert "did not compile within 2 s" in err and "BUILDTAPE_SHIM_TIMEOUT" in err
    time.sleep(0.5)  # the helper, had it survived, would have recreated its file by now
    assert left_behind(tmp_path) == []
    assert not (tmp_path / "t.tape").exists()


def test_a_compiler_killed_by_a_signal_leaves_nothing(tmp_path: Path) -> None:
    out = record_true(tmp_path, fake_cc(tmp_path, "killed"))
    err = out.stderr.decode()
    assert out.returncode == 125, err
    assert "was killed by SIGKILL" in err and err.count("\n") == 1, err
    time.sleep(0.5)
    assert left_behind(tmp_path) == []


def test_what_a_killed_recorder_left_is_removed_by_the_next(tmp_path: Path) -> None:
    env = fake_cc(tmp_path, "hang")
    rec = spawn_buildtape(
        "record", "-q", "-o", tmp_path / "t.tape", "--", "true", env=env, start_new_session=True
    )
    mark = tmp_path / "cc.pid"
    for _ in range(600):
        if mark.exists() and mark.read_text().strip() and left_behind(tmp_path):
            break
        time.sleep(0.05)
    cc_group = os.getpgid(int(mark.read_text()))
    os.killpg(rec.pid, signal.SIGKILL)  # the recorder gets no chance to clean up
    rec.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(cc_group, signal.SIGKILL)  # and its compiler, if it has a group of its own
    (partial,) = left_behind(tmp_path)
    assert partial.endswith(".partial")
    old = time.time() - 3600
    os.utime(tmp_path / "cache" / "buildtape" / partial, (old, old))
    earlier = tmp_path / "cache" / "buildtape" / "tmpq1w2e3r4.so.partial"
    earlier.write_bytes(b"\x7fELF, cut short")  # as the previous version left a killed compile
    os.utime(earlier, (old, old))
    del env["CC"]  # the machine's own compiler this time
    out = record_true(tmp_path, env)
    assert out.returncode == 0, out.stderr.decode()
    (built,) = left_behind(tmp_path)
    assert built.startswith("btshim-") and built.endswith(".so")
    assert not earlier.exists()
