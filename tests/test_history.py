"""The history store and `buildtape history`, on real recordings."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import buildtape, spawn_buildtape


def history(ws: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out = buildtape("history", "--json", *args, cwd=ws, env=env, check=True)
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def test_records_are_indexed_newest_first_and_filtered(tmp_path: Path) -> None:
    for script, label in (("true", "first"), ("exit 3", "second"), ("true", "third")):
        buildtape(
            "record",
            "-q",
            "--trace",
            "none",
            "--label",
            f"n={label}",
            "--",
            "sh",
            "-c",
            script,
            cwd=tmp_path,
        )
    rows = history(tmp_path)
    assert [r["labels"]["n"] for r in rows] == ["third", "second", "first"]
    assert [r["status"] for r in rows] == ["succeeded", "failed", "succeeded"]
    assert rows[1]["exit_code"] == 3 and rows[1]["command"] == ["sh", "-c", "exit 3"]
    assert [r["labels"]["n"] for r in history(tmp_path, "--status", "failed")] == ["second"]
    assert [r["labels"]["n"] for r in history(tmp_path, "--label", "n=first")] == ["first"]
    assert len(history(tmp_path, "--limit", "2")) == 2
    assert len(history(tmp_path, "--since", "1h")) == 3
    assert history(tmp_path, "--since", "2999-01-01T00:00:00Z") == []
    text = buildtape("history", cwd=tmp_path, check=True).stdout.decode().splitlines()
    assert text[0].split()[:4] == ["ID", "STARTED", "STATUS", "EXIT"] and len(text) == 4
    # Each row names its tape (relative to the cwd) and the ID that `#ID` takes.
    assert text[1].split()[0] == f"#{rows[0]['id']}" and rows[0]["tape"].endswith(".tape")
    assert str(Path(rows[0]["tape"]).relative_to(tmp_path)) in text[1]


def test_no_store_and_home_override(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    buildtape("record", "-q", "--trace", "none", "--no-store", "--", "true", cwd=ws, check=True)
    assert history(ws) == []
    home = tmp_path / "elsewhere"
    env = {**os.environ, "BUILDTAPE_HOME": str(home)}
    buildtape(
        "record",
        "-q",
        "--trace",
        "none",
        "-o",
        ws / "x.tape",
        "--",
        "true",
        cwd=ws,
        env=env,
        check=True,
    )
    assert (home / "history.sqlite").exists()
    assert len(history(ws, env=env)) == 1


def test_eight_concurrent_recorders_share_one_history(tmp_path: Path) -> None:
    procs = [
        spawn_buildtape(
            "record",
            "-q",
            "--trace",
            "none",
            "--label",
            f"i={i}",
            "--",
            "sh",
            "-c",
            "sleep 0.2",
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert errors == [b""] * 8  # no lock errors, no warnings
    rows = history(tmp_path, "--limit", "100")
    assert sorted(r["labels"]["i"] for r in rows) == [str(i) for i in range(8)]
    assert len({r["tape"] for r in rows}) == 8


def test_deleted_tape_is_reported_and_reindex_recovers(tmp_path: Path) -> None:
    for i in range(3):
        buildtape(
            "record",
            "-q",
            "--trace",
            "none",
            "--label",
            f"i={i}",
            "--",
            "true",
            cwd=tmp_path,
            check=True,
        )
    rows = history(tmp_path)
    Path(rows[0]["tape"]).unlink()
    rows = history(tmp_path)
    assert [r["present"] for r in rows] == [False, True, True]
    text = buildtape("history", cwd=tmp_path, check=True).stdout.decode()
    assert "(tape missing)" in text
    (tmp_path / ".buildtape" / "history.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / ".buildtape" / f"history.sqlite{suffix}").unlink(missing_ok=True)
    assert history(tmp_path) == []
    out = buildtape("history", "--reindex", cwd=tmp_path, check=True)
    assert b"reindexed 2 tapes" in out.stderr
    assert sorted(r["labels"]["i"] for r in history(tmp_path)) == ["0", "1"]  # i=2 was deleted


def test_reindex_keeps_the_tapes_written_elsewhere_that_are_still_there(tmp_path: Path) -> None:
    """`record -o DIR/x.tape` is indexed by its path; a reindex must not forget it."""
    ws = tmp_path / "ws"
    ws.mkdir()
    elsewhere = tmp_path / "tapes" / "kept.tape"
    gone = tmp_path / "tapes" / "gone.tape"
    for out in (elsewhere, gone):
        buildtape("record", "-q", "--trace", "none", "-o", out, "--", "true", cwd=ws, check=True)
    buildtape("record", "-q", "--trace", "none", "--", "true", cwd=ws, check=True)  # in home
    gone.unlink()
    out = buildtape("history", "--reindex", cwd=ws, check=True)
    assert b"reindexed 2 tapes" in out.stderr, out.stderr
    tapes = [Path(r["tape"]) for r in history(ws)]
    assert elsewhere in tapes and gone not in tapes and len(tapes) == 2
    assert all(t.is_file() for t in tapes)


def test_bad_since_is_a_usage_error(tmp_path: Path) -> None:
    out = buildtape("history", "--since", "last tuesday", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.decode().strip().splitlines()[-1] == (
        "Error: Invalid value for '--since': 'last tuesday' is neither like 7d, 12h, 30m "
        "nor an ISO time"
    )
    assert not (tmp_path / ".buildtape").exists()


def test_a_tape_that_could_not_be_written_leaves_no_history_row(tmp_path: Path) -> None:
    """The history is written while the tape is synced; a build that removes the directory
    the tape goes to makes the last step fail, and takes the row back with it."""
    ws = tmp_path / "ws"
    (ws / "out").mkdir(parents=True)
    out = buildtape("record", "-q", "-o", ws / "out" / "x.tape", "--", "rm", "-r", "out", cwd=ws)
    assert out.returncode == 125, out.stderr
    message = out.stderr.decode()
    assert "could not write tape" in message and "removed while the build ran" in message
    assert "Traceback" not in message
    assert history(ws) == []
    assert not (ws / "out").exists()  # and nothing left where it was
