"""Where a command's result goes with ``-o``, through the real CLI: a regular file is
replaced whole (a temporary file and a rename), but a device, a FIFO or a terminal is
written in place, a symbolic link keeps pointing where it did, and a write that fails
is one line naming the file and what to do, exit 5."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import buildtape


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("ws")
    out = ws / "t.tape"
    buildtape("record", "-q", "--no-store", "-o", out, "--", "sh", "-c", "echo hi", cwd=ws,
              check=True)  # fmt: skip
    return out


def test_a_fifo_is_written_through_never_replaced(tape: Path, tmp_path: Path) -> None:
    # `-o /dev/stdout`, `-o /dev/null`, `-o >(gzip > x.gz)`: renaming a temporary file over
    # them would put a regular file where the device was (as root, /dev/stdout itself).
    fifo = tmp_path / "pipe.svg"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    done = buildtape("flame", tape, "-o", fifo, "--format", "svg", check=True)
    reader.join(timeout=60)
    assert stat.S_ISFIFO(fifo.lstat().st_mode), "the FIFO was replaced by a file"
    assert got and got[0].startswith(b"<?xml") and got[0].rstrip().endswith(b"</svg>")
    assert f"wrote {fifo}" in done.stderr.decode()


def test_a_symbolic_link_keeps_pointing_at_its_file(tape: Path, tmp_path: Path) -> None:
    real = tmp_path / "reports" / "real.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    buildtape("report", tape, "-o", link, check=True)
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text().startswith("<!doctype html>")
    assert [p.name for p in real.parent.iterdir()] == ["real.csv"]  # no temporary left


def test_an_output_that_cannot_be_written_names_it_and_the_remedy(
    tape: Path, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "out.svg"  # its directory is a file
    done = buildtape("flame", tape, "-o", target)
    assert done.returncode == 5, done.stderr
    assert done.stderr.decode().splitlines() == [
        f"buildtape: error: could not write {target}: File exists; choose another place with -o"
    ]
    assert (tmp_path / "file").read_text() == "x"


def test_a_full_disk_for_stdout_says_so_in_one_line(tape: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is not available to simulate a full disk")
    for args in (["show", tape], ["show", tape, "--format", "json"], ["ps", tape]):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "buildtape", *map(str, args)],
                                  stdout=full, stderr=subprocess.PIPE, timeout=60)  # fmt: skip
        assert done.returncode == 5, done.stderr
        assert done.stderr.decode().splitlines() == [
            "buildtape: error: no space left on device for the output; free some space or "
            "send it elsewhere"
        ], args


def test_an_input_file_that_is_not_there_says_so_and_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "profile.folded"
    done = buildtape("flame", missing, "-o", tmp_path / "out.svg")
    assert done.returncode == 4, done.stderr
    assert done.stderr.decode().splitlines() == [
        f"buildtape: error: no file at {missing}; check the path"
    ]
    assert not (tmp_path / "out.svg").exists()
