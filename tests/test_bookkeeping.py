"""Build-system bookkeeping: one definition for diff and for replay's verdict.

A real build writes every kind of bookkeeping file with random content (as ninja's log holds
times and autoconf's config.log process ids and temp names), beside a real output. Recorded
twice, ``diff`` must call the two builds equivalent, ``replay`` must count those files as
expected differences and nothing else, and for any path the diff's comparison and the
verdict's reason must agree on whether it is bookkeeping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recorder import normalize
from recorder.model import FileEntry
from recorder.normalize import Normalizer
from recorder.tape import open_tape
from replay import vary, verdict
from replay.content_diff import ContentOptions, Side, compare_files
from replay.verdict import explain
from tests.conftest import buildtape, needs_strace

# One of each rule: every name on the list, ctest's logs of a run, autom4te's request cache,
# meson's pickled state, cargo's incremental-compilation cache.
BOOKKEEPING_PATHS = (
    "build/.ninja_log",
    "build/.ninja_deps",
    "build/CMakeFiles/CMakeOutput.log",
    "build/CMakeFiles/CMakeError.log",
    "build/CMakeFiles/CMakeConfigureLog.yaml",
    "target/.rustc_info.json",
    "config.log",
    "build/Testing/Temporary/LastTest.log",
    "build/Testing/Temporary/LastTest_20261202-0130.log",
    "build/Testing/Temporary/CTestCostData.txt",
    "autom4te.cache/requests",
    "build/meson-private/coredata.dat",
    "build/meson-logs/meson-log.txt",
    "build/meson-private/build.dat",
    "target/debug/incremental/app-1x2y/s-abc/dep-graph.bin",
)
# Build outputs with names close to those: real differences.
BUILD_PATHS = (
    "build/build.ninja",
    "config.status",
    "config.h",
    "build/Testing/LastTest.log",
    "autom4te.cache/output.0",
    "build/meson-private/cmd_line.txt",
    "build/meson-info/intro-targets.json",
    "incremental/notes.txt",
    "out.txt",
)

BUILD_SH = """set -e
rnd() { od -An -N8 -tx1 /dev/urandom | tr -d ' \\n'; }
for f in "$@"; do mkdir -p "$(dirname "$f")"; rnd > "$f"; done
echo same > out.txt
"""

pytestmark = needs_strace


def _record(ws: Path, tape: Path) -> Path:
    ws.mkdir(parents=True)
    (ws / "build.sh").write_text(BUILD_SH)
    argv = ("sh", "build.sh", *BOOKKEEPING_PATHS)
    buildtape("record", "-q", "-o", tape, "--", *argv, cwd=ws, check=True)
    return tape


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bookkeeping")
    return _record(root / "a" / "ws", root / "a.tape"), _record(root / "b" / "ws", root / "b.tape")


def test_builds_differing_only_in_bookkeeping_diff_as_equivalent(
    tapes: tuple[Path, Path],
) -> None:
    a, b = tapes
    with open_tape(a) as ta, open_tape(b) as tb:
        written = {o.path for o in ta.manifest.outputs} & {o.path for o in tb.manifest.outputs}
        sha_a = {o.path: o.sha256 for o in ta.manifest.outputs}
        sha_b = {o.path: o.sha256 for o in tb.manifest.outputs}
    # The files really differ between the two builds: the diff has something to ignore.
    assert set(BOOKKEEPING_PATHS) <= written
    assert all(sha_a[p] != sha_b[p] for p in BOOKKEEPING_PATHS)
    out = buildtape("diff", a, b)
    assert out.returncode == 0, out.stdout.decode()
    assert out.stdout.decode().splitlines()[0].startswith("verdict: equivalent")


def test_replay_counts_every_bookkeeping_file_as_expected(tapes: tuple[Path, Path]) -> None:
    out = buildtape("replay", "--yes", "--format", "json", tapes[0])
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    verdict = json.loads(out.stdout)
    assert verdict["reproduced"] is True
    expected = sorted(
        f["path"] for f in verdict["findings"] if f["reason"] == "bookkeeping" and f["expected"]
    )
    assert expected == sorted(BOOKKEEPING_PATHS)
    assert all(f["expected"] for f in verdict["findings"])
    same = {o["path"] for o in verdict["outputs"] if o["status"] == "same"}
    assert "out.txt" in same


def test_replay_uses_the_one_definition() -> None:
    # Not a second list beside it, which could drift from what diff leaves out.
    assert verdict.is_bookkeeping is normalize.is_bookkeeping
    assert vary.is_bookkeeping is normalize.is_bookkeeping


@pytest.mark.parametrize("path", BOOKKEEPING_PATHS + BUILD_PATHS)
def test_diff_and_verdict_agree_on_what_is_bookkeeping(path: str, tapes: tuple[Path, Path]) -> None:
    with open_tape(tapes[0]) as tape:
        side = Side(tape, Normalizer(tape.manifest.workspace))
        # Two versions of the file, hashed but not stored: different unless left out.
        ea = FileEntry(path, 0o644, 17, "a" * 64)
        eb = FileEntry(path, 0o644, 17, "b" * 64)
        listed = compare_files(side, side, [ea], [eb], ContentOptions())
        finding = explain(path, "different", (tape, ea), lambda: b"other", "/ws", "/ws", drifted={})
    diff_ignores = not listed
    verdict_expects = finding.reason == "bookkeeping" and finding.expected
    assert diff_ignores == verdict_expects == (path in BOOKKEEPING_PATHS)
