"""stats, alerts and check over part of a history (--command, --label, --branch), and
interrupted builds counted apart, on real recordings through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import buildtape, spawn_buildtape


def record(
    ws: Path, *argv: str, label: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> None:
    labels = [x for kv in label for x in ("--label", kv)]
    out = buildtape("record", "-q", "--trace", "none", *labels, "--", *argv, cwd=ws, env=env)
    assert out.returncode not in (2, 70), out.stderr


def cli_json(ws: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(buildtape(*args, "--format", "json", cwd=ws, env=env, check=True).stdout)


def git(ws: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=ws, check=True, capture_output=True,
    )  # fmt: skip


def interrupt_a_recording(ws: Path) -> None:
    """^C a recording of a build that runs until interrupted, as a person would."""
    script = "echo ready; while :; do sleep 0.05; done"
    proc = spawn_buildtape(
        "record", "-q", "--trace", "none", "--", "sh", "-c", script,
        cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == b"ready\n", proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)


def test_interrupted_builds_are_counted_apart(tmp_path: Path) -> None:
    for _ in range(3):
        record(tmp_path, "sh", "-c", "sleep 0.05")
    record(tmp_path, "sh", "-c", "sleep 0.05; exit 3")
    # Three ways a build is interrupted: the shell's code for ^C, a SIGTERM, a real ^C.
    record(tmp_path, "sh", "-c", "sleep 0.4; exit 130")
    record(tmp_path, "sh", "-c", "sleep 0.5; kill -TERM $$")
    interrupt_a_recording(tmp_path)

    builds = cli_json(tmp_path, "history", "--limit", "100")
    assert sorted(b["status"] for b in builds) == [
        "failed",
        *["interrupted"] * 3,
        *["succeeded"] * 3,
    ]
    completed = sorted(b["duration_s"] for b in builds if b["status"] != "interrupted")
    s = cli_json(tmp_path, "stats")
    assert (s["builds"], s["succeeded"], s["failed"], s["interrupted"]) == (7, 3, 1, 3)
    assert s["success_rate"] == 0.75 and s["failure_rate"] == 0.25
    assert s["duration_s"]["max"] == pytest.approx(completed[-1], abs=2e-6)
    assert s["duration_s"]["min"] == pytest.approx(completed[0], abs=2e-6)
    # The interrupted builds ran longest, but are neither slow steps nor failures.
    steps = {st["step"] for st in s["slowest_steps"]}
    assert steps == {"sh -c 'sleep 0.05'", "sh -c 'sleep 0.05; exit 3'"}
    week = cli_json(tmp_path, "stats", "--since", "7d")
    assert week["slowest_steps"] == s["slowest_steps"]  # running totals agree with the rows
    assert [(f["step"], f["exit_code"]) for f in s["failures"]] == [
        ("sh -c 'sleep 0.05; exit 3'", 3)
    ]
    text = buildtape("stats", cwd=tmp_path, check=True).stdout.decode()
    assert (
        "interrupted: 3" in text and "success rate: 75.0% (interrupted builds not counted)" in text
    )


def test_stats_select_builds_by_command_label_and_branch(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    git(ws, "init", "-q", "-b", "main")
    (ws / "README").write_text("x\n")
    git(ws, "add", "README")
    git(ws, "commit", "-q", "-m", "one")
    record(ws, "sh", "-c", "sleep 0.05", label=("job=linux",))
    record(ws, "sh", "-c", "exit 4", label=("job=linux",))
    git(ws, "checkout", "-q", "-b", "feature/x")
    record(ws, "sh", "-c", "sleep 0.1", label=("job=mac",))
    # CI checks out a commit (a detached HEAD): the branch is the CI system's variable.
    git(ws, "checkout", "-q", "--detach")
    record(ws, "true", env={**os.environ, "GITHUB_HEAD_REF": "topic"}, label=("job=mac",))

    def figures(*select: str) -> tuple[int, int, int]:
        s = cli_json(ws, "stats", *select)
        return s["builds"], s["succeeded"], s["failed"]

    assert figures() == (4, 3, 1)
    assert figures("--branch", "main") == (2, 1, 1)
    assert figures("--branch", "feature/x") == (1, 1, 0)
    assert figures("--branch", "topic") == (1, 1, 0)
    assert figures("--label", "job=mac") == (2, 2, 0)
    assert figures("--label", "job=mac", "--branch", "topic") == (1, 1, 0)
    assert figures("--command", "sh -c*") == (3, 2, 1)
    assert figures("--command", "true") == (1, 1, 0)
    assert figures("--command", "tru") == (0, 0, 0)  # without wildcards, the whole line
    grouped = cli_json(ws, "stats", "--by", "branch")["groups"]
    assert {g["group"]: g["builds"] for g in grouped} == {"main": 2, "feature/x": 1, "topic": 1}
    only_main = cli_json(ws, "stats", "--branch", "main")
    assert {st["step"] for st in only_main["slowest_steps"]} == {
        "sh -c 'sleep 0.05'", "sh -c 'exit 4'"
    }  # fmt: skip
    assert [f["step"] for f in only_main["failures"]] == ["sh -c 'exit 4'"]
    assert only_main["select"] == {"branch": "main", "command": None, "labels": {}}
    assert cli_json(ws, "stats", "--branch", "feature/x")["failures"] == []
    text = buildtape("stats", "--label", "job=mac", cwd=ws, check=True).stdout.decode()
    assert "only builds with label job=mac" in text


def test_alerts_and_check_judge_the_selected_builds_only(tmp_path: Path) -> None:
    (tmp_path / "buildtape.toml").write_text("[alerts]\nwindow = 4\nmin_baseline = 2\n")
    for _ in range(4):
        record(tmp_path, "sh", "-c", "exit 1", label=("job=flaky",))
    for _ in range(4):
        record(tmp_path, "true", label=("job=steady",))
    # The newest build overall is steady, but the window of the last 4 builds (all
    # steady) passes; the flaky job alone fails every build.
    assert cli_json(tmp_path, "alerts") == []
    flaky = cli_json(tmp_path, "alerts", "--label", "job=flaky")
    assert [(a["level"], a["rule"]) for a in flaky] == [("critical", "success_rate")]
    assert "success rate 0% over the last 4 builds" in flaky[0]["message"]
    assert buildtape("check", "--label", "job=steady", cwd=tmp_path).returncode == 0
    gate = buildtape("check", "--command", "sh -c*", cwd=tmp_path)
    assert gate.returncode == 1 and b"success_rate" in gate.stdout
    # An interrupted build is never the one judged, nor part of a window.
    for _ in range(4):
        record(tmp_path, "sh", "-c", "exit 130", label=("job=steady",))
    assert cli_json(tmp_path, "alerts", "--label", "job=steady") == []
    assert (
        buildtape("check", "--label", "job=steady", "--fail-on", "info", cwd=tmp_path).returncode
        == 0
    )


def test_a_schema_3_history_gains_branches_and_interrupted_builds(tmp_path: Path) -> None:
    """A history written before schema 4: builds that exited 130 or 143 become interrupted
    and leave the slowest-steps totals; new columns are there for new builds."""
    record(tmp_path, "sh", "-c", "sleep 0.05")
    record(tmp_path, "sh", "-c", "sleep 0.3; exit 130")
    db_path = tmp_path / ".buildtape" / "history.sqlite"
    db = sqlite3.connect(db_path)
    # Take it back to schema 3 as it was: no signal, no branch, 130 counted as failed,
    # its step in the running totals.
    db.execute("UPDATE builds SET status = 'failed' WHERE exit_code = 130")
    db.execute("DROP INDEX builds_branch")
    db.execute("ALTER TABLE builds DROP COLUMN branch")
    db.execute("ALTER TABLE builds DROP COLUMN signal")
    db.execute("DELETE FROM step_totals")
    db.execute(
        "INSERT INTO step_totals SELECT key, count(*), sum(duration_s), max(duration_s)"
        " FROM steps GROUP BY key"
    )
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()

    s = cli_json(tmp_path, "stats")
    assert (s["builds"], s["succeeded"], s["failed"], s["interrupted"]) == (2, 1, 0, 1)
    assert [st["step"] for st in s["slowest_steps"]] == ["sh -c 'sleep 0.05'"]
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    columns = [r[1] for r in db.execute("PRAGMA table_info(builds)")]
    db.close()
    assert columns[-2:] == ["signal", "branch"]
    record(tmp_path, "true")
    assert cli_json(tmp_path, "stats")["succeeded"] == 2
