"""The tape container: round trip, standard tools, and every way a reader must refuse a tape."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import zstandard

from recorder import container
from recorder.container import TapeReader, TapeWriter
from recorder.errors import TapeError
from recorder.tape import open_tape
from tests.conftest import buildtape, rewrite


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real recording (no tracing needed) to take apart in these tests."""
    ws = tmp_path_factory.mktemp("ws")
    (ws / "src.txt").write_text("hello\n" * 100)
    (ws / "lib").mkdir()
    (ws / "lib" / "link").symlink_to("../src.txt")
    tape = ws.parent / "base.tape"
    buildtape(
        "record",
        "-q",
        "--trace",
        "none",
        "--workspace",
        ws,
        "-o",
        tape,
        "--",
        "sh",
        "-c",
        "cat src.txt > out.txt; echo done",
        cwd=ws,
        check=True,
    )
    return tape


def manifest_of(tape: Path) -> dict[str, Any]:
    with TapeReader(tape) as r:
        return r.read_manifest()


def test_round_trip_and_dedup(tmp_path: Path) -> None:
    w = TapeWriter(tmp_path / "t.tape")
    a = w.add_blob(b"same bytes")
    assert w.add_blob(b"same bytes") == a
    b = w.add_blob(b"")
    w.commit({"hello": "world"})
    with TapeReader(tmp_path / "t.tape") as r:
        assert r.read_manifest() == {"hello": "world"}
        assert r.blob_digests() == sorted([a, b])
        assert r.read_blob(a) == b"same bytes"
        assert r.read_blob(b) == b""
        assert r.verify() == 2
    assert not list(tmp_path.glob("*.partial"))


def test_packs_written_in_the_background_keep_their_order(tmp_path: Path) -> None:
    """Blobs spread over many packs (small ones filling packs, big ones alone, explicit
    flushes between batches) all read back: the background queue keeps the table true."""
    rng = random.Random(7)
    w = TapeWriter(tmp_path / "t.tape")
    blobs: dict[str, bytes] = {}
    for _batch in range(3):
        for _ in range(40):
            size = rng.choice([10, 5_000, 300_000, container.PACK_MEMBER_MAX + 1])
            data = rng.randbytes(size)
            blobs[w.add_blob(data)] = data
        w.flush()
    w.commit({"batches": 3})
    with TapeReader(tmp_path / "t.tape") as r:
        assert len(r._packs) > 10
        assert r.verify() == len(blobs)
        for digest, data in blobs.items():
            assert r.read_blob(digest) == data


def test_manifest_read_without_decompressing_blobs(
    recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = TapeReader._frame

    def spy(self: TapeReader, offset: int, length: int, expected: int, what: str) -> bytes:
        seen.append(what)
        return original(self, offset, length, expected, what)

    monkeypatch.setattr(TapeReader, "_frame", spy)
    with TapeReader(recorded) as r:
        r.read_manifest()
        assert seen == ["manifest.json"]
        r.read_blob(r.blob_digests()[0])
    assert seen == ["manifest.json", "pack 0"]


@pytest.mark.skipif(
    shutil.which("zstd") is None or shutil.which("tar") is None,
    reason="the zstd and tar command-line tools are not installed",
)
def test_readable_with_standard_tools(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(f"zstd -dc '{recorded}' | tar -x -C '{out}'", shell=True, check=True)
    manifest = json.loads((out / "manifest.json").read_text())
    table = manifest.pop("_tape")
    assert manifest == manifest_of(recorded)
    assert set(table["blobs"]) == {e["sha256"] for e in manifest["inputs"] if e.get("stored")} | {
        manifest["streams"]["stdout_blob"]
    } | {e["sha256"] for e in manifest["outputs"] if e.get("stored")}
    src = next(e for e in manifest["inputs"] if e["path"] == "src.txt")
    blob = out / "blobs" / src["sha256"][:2] / src["sha256"]
    assert blob.read_text() == "hello\n" * 100
    assert subprocess.run(["zstd", "-tq", str(recorded)]).returncode == 0


def _expect_refused(tape: Path, fragment: str) -> None:
    with pytest.raises(TapeError, match=fragment), open_tape(tape) as t:
        t.reader.verify()
    for cmd in ("show", "verify"):
        proc = buildtape(cmd, tape)
        lines = proc.stderr.decode().splitlines()
        assert proc.returncode == 3, (cmd, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("buildtape: error: "), lines
        assert "Traceback" not in proc.stderr.decode()
        assert proc.stdout == b""


def test_truncated_tape_is_refused(recorded: Path, tmp_path: Path) -> None:
    data = recorded.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 10):
        bad = tmp_path / f"cut{cut}.tape"
        bad.write_bytes(data[:cut])
        _expect_refused(bad, "truncated|too short")


def test_flipped_byte_in_a_blob_is_refused(recorded: Path, tmp_path: Path) -> None:
    data = bytearray(recorded.read_bytes())
    with TapeReader(recorded) as r:
        digest = r.blob_digests()[0]
        pack = r._packs[r._blobs[digest][0]]
    data[pack.offset + pack.length // 2] ^= 0xFF
    bad = tmp_path / "flip.tape"
    bad.write_bytes(bytes(data))
    with TapeReader(bad) as r:
        r.read_manifest()  # the manifest is intact...
        with pytest.raises(TapeError, match="corrupt"):
            r.read_blob(digest)  # ...the blob is not
    proc = buildtape("verify", bad)
    assert proc.returncode == 3 and b"corrupt" in proc.stderr


def test_flipped_byte_in_the_index_is_refused(recorded: Path, tmp_path: Path) -> None:
    data = bytearray(recorded.read_bytes())
    data[-60] ^= 0x01
    bad = tmp_path / "idx.tape"
    bad.write_bytes(bytes(data))
    _expect_refused(bad, "index checksum")


def test_not_a_tape(tmp_path: Path) -> None:
    bad = tmp_path / "notes.tape"
    bad.write_text("just some text that is long enough to have a trailer of sorts" * 3)
    _expect_refused(bad, "zstd frame")


def test_missing_tape_is_exit_4(tmp_path: Path) -> None:
    proc = buildtape("show", tmp_path / "nope.tape")
    assert proc.returncode == 4
    assert (
        proc.stderr.decode().strip()
        == f"buildtape: error: no tape at {tmp_path / 'nope.tape'}; check the path, or name "
        "one from the history: last, last~1, #ID (see `buildtape history`)"
    )


def test_unknown_major_version_is_refused(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container, "FORMAT_VERSION", "2.0")
    bad = rewrite(recorded, tmp_path / "v2.tape", lambda m: None)
    monkeypatch.undo()
    _expect_refused(bad, r"format 2\.0.*upgrade buildtape")


def test_newer_minor_version_is_read(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container, "FORMAT_VERSION", "1.7")
    ok = rewrite(recorded, tmp_path / "v17.tape", lambda m: None)
    monkeypatch.undo()
    with open_tape(ok) as t:
        assert t.reader.format_version == "1.7"


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("path", "../escape.txt", "unsafe path"),
        ("path", "/etc/passwd", "unsafe path"),
        ("path", "a/./b", "unsafe path"),
        ("link", "../../outside", "escapes the workspace"),
        ("link", "/etc/shadow", "escapes the workspace"),
    ],
)
def test_hostile_paths_and_links_are_refused(
    recorded: Path, tmp_path: Path, field: str, value: str, fragment: str
) -> None:
    def mutate(m: dict[str, Any]) -> None:
        entry = next(
            e for e in m["inputs"] if e["path"] == ("lib/link" if field == "link" else "src.txt")
        )
        entry[field] = value

    bad = rewrite(recorded, tmp_path / "hostile.tape", mutate)
    _expect_refused(bad, fragment)


@pytest.fixture(scope="module")
def with_listed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording whose untouched files are listed rows (format 1.3): a file nobody reads,
    and a link nobody follows, beside the one the build reads."""
    ws = tmp_path_factory.mktemp("listed")
    (ws / "src.txt").write_text("hello\n")
    (ws / "untouched.txt").write_text("never read\n")
    (ws / "lib").mkdir()
    (ws / "lib" / "link").symlink_to("../untouched.txt")
    tape = ws.parent / "listed.tape"
    buildtape("record", "-q", "-o", tape, "--", "sh", "-c", "cat src.txt > out.txt",
              cwd=ws, check=True)  # fmt: skip
    return tape


def test_listed_rows_read_back_as_inputs(with_listed: Path) -> None:
    raw = manifest_of(with_listed)
    assert [row[0] for row in raw["listed"]] == ["lib/link", "untouched.txt"]
    with open_tape(with_listed) as t:
        inputs = {e.path: e for e in t.manifest.inputs}
    assert sorted(inputs) == ["lib/link", "src.txt", "untouched.txt"]
    assert inputs["lib/link"].link == "../untouched.txt"
    untouched = inputs["untouched.txt"]
    assert untouched.sha256 is None and untouched.blob is None
    assert untouched.size == 11 and untouched.mtime_ns == raw["listed"][1][3]


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        (["../escape.txt", 0o100644, 1, 0], "unsafe path"),
        (["/etc/passwd", 0o100644, 1, 0], "unsafe path"),
        (["a", 0o100644, 1], r"not a \[path, mode, size, mtime_ns\] row"),
        ({"path": "a"}, r"not a \[path, mode, size, mtime_ns\] row"),
        (["a", "644", 1, 0], "mode"),
        (["a", 0o100644, -1, 0], "negative size"),
        (["a", 0o100644, 1, None], "mtime_ns"),
        (["lib/evil", 0o120777, 0, 0, "../../outside"], "escapes the workspace"),
        (["src.txt", 0o100644, 6, 0], "listed twice"),
    ],
)
def test_hostile_listed_rows_are_refused(
    with_listed: Path, tmp_path: Path, row: object, fragment: str
) -> None:
    bad = rewrite(with_listed, tmp_path / "hostile.tape", lambda m: m["listed"].append(row))
    _expect_refused(bad, fragment)


def test_link_inside_workspace_is_accepted(recorded: Path) -> None:
    with open_tape(recorded) as t:
        link = next(e for e in t.manifest.inputs if e.path == "lib/link")
        assert link.link == "../src.txt"


def test_declared_bomb_is_refused_before_decompressing(tmp_path: Path) -> None:
    w = TapeWriter(tmp_path / "bomb.tape")
    w.add_blob(b"tiny")
    w.flush()
    w._queue.wait()  # the pack is written: the test edits its table entry
    w._packs[0][2] = 50 * 1024**3  # a pack that claims 50 GiB
    w.commit({"m": 1})
    with pytest.raises(TapeError, match="over the limit"):
        TapeReader(tmp_path / "bomb.tape")


def test_frame_larger_than_declared_is_refused(tmp_path: Path) -> None:
    """A frame that would inflate to 256 MiB where the blob table says a few bytes."""
    w = TapeWriter(tmp_path / "inflate.tape")
    small = w.add_blob(b"tiny")
    w.flush()
    w._queue.wait()  # the pack is written: the test edits its table entry
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (256 * 1024**2))
    assert len(bomb) < 64 * 1024
    w._file.write(bomb)
    w._packs.append([w._offset, len(bomb), 1024])
    w._offset += len(bomb)
    w._blobs[small] = [1, 0, 4]
    w.commit({"m": 1})
    with TapeReader(tmp_path / "inflate.tape") as r, pytest.raises(TapeError, match="declares"):
        r.read_blob(small)


def test_writer_abort_leaves_nothing(tmp_path: Path) -> None:
    w = TapeWriter(tmp_path / "t.tape")
    w.add_blob(b"x" * 1000)
    assert list(tmp_path.glob("*.partial"))
    w.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "blob",
    [
        b"y" * 100_000,  # a small pack, written at commit
        os.urandom(container.PACK_MEMBER_MAX + 1),  # its own pack, written in the background
    ],
    ids=["at-commit", "in-background"],
)
def test_full_disk_is_one_clear_error(tmp_path: Path, blob: bytes) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full is not available to simulate a full disk")
    w = TapeWriter(tmp_path / "t.tape")
    w._file.close()
    w._file = open("/dev/full", "wb")  # noqa: SIM115 - every write fails with ENOSPC
    w.add_blob(blob)
    w.flush()
    with pytest.raises(TapeError, match=r"No space left on device.*free some space"):
        w.commit({"m": 1})
    assert not (tmp_path / "t.tape").exists()
    assert not list(tmp_path.glob("*.partial"))


def test_manifest_output_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        w = TapeWriter(tmp_path / f"{name}.tape")
        w.add_blob(b"two")
        w.add_blob(b"one")
        w.commit({"z": 1, "a": [3, 2, 1]})
    assert (tmp_path / "a.tape").read_bytes() == (tmp_path / "b.tape").read_bytes()
