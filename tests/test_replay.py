"""Replay, step extraction and step listing on real fixture builds."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recorder.tape import open_tape
from tests.conftest import answer_on_a_terminal, buildtape, needs_strace, rewrite

pytestmark = needs_strace


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        h.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def c_make_tape(fixture_copy: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    ws = fixture_copy("c-make")
    tape = tmp_path / "c.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", "-j2", cwd=ws, check=True)
    return tape, ws


def steps(tape: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(buildtape("ps", "--json", tape, check=True).stdout)
    return rows


def compile_step(tape: Path, source: str) -> dict[str, Any]:
    rows = steps(tape)
    make = next(r for r in rows if r["argv"][:1] == ["make"])
    return next(r for r in rows if r["parent_id"] == make["id"] and source in r["argv"])


def test_replay_reproduces_and_leaves_the_workspace_alone(c_make_tape: tuple[Path, Path]) -> None:
    tape, ws = c_make_tape
    before = tree_hash(ws)
    out = buildtape("replay", tape)
    text = out.stdout.decode()
    assert out.returncode == 0, text + out.stderr.decode()
    assert "reproduced: 7 same; exit 0 as recorded" in text
    assert tree_hash(ws) == before


def test_replay_names_exactly_the_nondeterministic_output(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("nondeterministic")
    tape = tmp_path / "nd.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    out = buildtape("replay", tape)
    assert out.returncode == 1
    lines = out.stdout.decode().splitlines()
    assert [
        line.split(": ", 1)[1].split(" ")[0]
        for line in lines
        if line.strip().startswith("different:")
    ] == ["out/stamp.txt"]
    assert "diverged: 1 different, 1 same" in lines
    step = next(line for line in lines if line.startswith("first divergent step:"))
    assert "out/stamp.txt" in step and "stable" not in step


def test_a_tape_recorded_with_strace_is_accounted_for_by_a_replay_under_strace(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    # cargo under --trace strace replayed with "diff: cargo (the build command) reads
    # /lib/x86_64-linux-gnu/libc.so.6 only in A": the replay's own recording used the
    # interposer, which does not see the dynamic loader open libc, and strace does.
    ws = fixture_copy("nondeterministic")
    tape = tmp_path / "nd.tape"
    buildtape("record", "-q", "--trace", "strace", "-o", tape, "--", "make", cwd=ws, check=True)
    out = buildtape("replay", "--format", "json", "-o", tmp_path / "again.tape", tape)
    assert out.returncode == 1, out.stderr.decode()
    cause = json.loads(out.stdout)["diff_cause"]
    assert cause.startswith("nondeterministic: same command and inputs"), cause
    assert "out/stamp.txt" in cause and "only in" not in cause, cause
    with open_tape(tmp_path / "again.tape") as again:
        assert again.manifest.tracing.mode == "strace"


def test_replay_one_step(c_make_tape: tuple[Path, Path], tmp_path: Path) -> None:
    tape, _ = c_make_tape
    step = compile_step(tape, "vec.c")
    kept = tmp_path / "sandbox"
    out = buildtape(
        "replay", tape, "--step", step["id"], "--workdir", kept, "-o", tmp_path / "r.tape"
    )
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    assert "reproduced: 1 same; exit 0 as recorded" in out.stdout.decode()
    assert (kept / "workspace" / "vec.o").exists()
    replayed = json.loads(buildtape("show", "--json", tmp_path / "r.tape", check=True).stdout)
    assert replayed["command"] == step["argv"]


def test_extract_runs_with_plain_sh(c_make_tape: tuple[Path, Path], tmp_path: Path) -> None:
    tape, ws = c_make_tape
    step = compile_step(tape, "parse.c")
    out_dir = tmp_path / "repro"
    buildtape("extract", tape, "--step", step["id"], "-o", out_dir, check=True)
    assert sorted(p.name for p in (out_dir / "workspace").iterdir()) == [
        "common.h", "parse.c", "strbuf.h", "vec.h",
    ]  # fmt: skip
    run = subprocess.run(["sh", "run.sh"], cwd=out_dir, capture_output=True, env={})
    assert run.returncode == 0, run.stderr
    built = (out_dir / "workspace" / "parse.o").read_bytes()
    assert hashlib.sha256(built).digest() == hashlib.sha256((ws / "parse.o").read_bytes()).digest()
    check = subprocess.run(["sha256sum", "-c", "expected.sha256"], cwd=out_dir, capture_output=True)
    assert check.returncode == 0 and b"workspace/parse.o: OK" in check.stdout


def test_drift_is_reported(c_make_tape: tuple[Path, Path], tmp_path: Path) -> None:
    tape, _ = c_make_tape
    manifest = json.loads(buildtape("show", "--json", tape, check=True).stdout)
    cc1 = next(e["path"] for e in manifest["external"] if e["path"].endswith("/cc1"))

    def alter(m: dict[str, Any]) -> None:
        for e in m["external"]:
            if e["path"] == cc1:
                e["sha256"] = "0" * 64

    altered = rewrite(tape, tmp_path / "drift.tape", alter)
    out = buildtape("replay", altered, "--yes")  # a crafted tape was not recorded here
    assert f"drift: {cc1}: 000000000000 in the tape, " in out.stdout.decode()
    assert out.returncode == 0  # the outputs still reproduce: drift is reported, not fatal


@pytest.mark.parametrize(
    ("field", "value"), [("path", "../escape.c"), ("link", "../../../etc/passwd")]
)
def test_hostile_tape_is_refused_and_writes_nothing(
    c_make_tape: tuple[Path, Path], tmp_path: Path, field: str, value: str
) -> None:
    tape, _ = c_make_tape

    def hostile(m: dict[str, Any]) -> None:
        entry = m["inputs"][0]
        entry[field] = value
        if field == "link":
            entry.pop("stored", None)

    bad = rewrite(tape, tmp_path / "bad.tape", hostile)
    sandbox = tmp_path / "sandbox"
    for args in (
        ["replay", bad, "--workdir", sandbox],
        ["extract", bad, "--step", "2", "-o", sandbox],
    ):
        out = buildtape(*args)
        assert out.returncode == 3
        lines = out.stderr.decode().splitlines()
        assert len(lines) == 1 and "refusing the tape" in lines[0]
        assert not sandbox.exists()


def test_ps_and_playback(c_make_tape: tuple[Path, Path]) -> None:
    tape, _ = c_make_tape
    text = buildtape("ps", tape, check=True).stdout.decode().splitlines()
    assert text[0].split() == ["ID", "PARENT", "DURATION", "EXIT", "COMMAND"]
    assert text[1].split()[:2] == ["1", "-"] and text[1].endswith("make -j2")
    assert len(text) == len(steps(tape)) + 1
    played = buildtape("replay", tape, "--playback", "--speed", "1000", check=True)
    with open_tape(tape) as t:
        recorded = t.stream("stdout")
    assert played.stdout == recorded and b"cc -O2 -Wall -c main.c" in played.stdout


def test_unknown_step_is_a_clear_error(c_make_tape: tuple[Path, Path], tmp_path: Path) -> None:
    tape, _ = c_make_tape
    out = buildtape("extract", tape, "--step", "999", "--into", tmp_path / "x")
    assert out.returncode == 7
    assert out.stderr.decode().strip() == (
        "buildtape: error: the tape has no step 999; `buildtape ps TAPE` lists them"
    )


def _build(tmp_path: Path, recipe: str) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Makefile").write_text(
        f"all:\n\tmkdir -p out\n\t{recipe}\n\tprintf 'stable\\n' > out/stable.txt\n"
    )
    tape = tmp_path / "v.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    return tape


def test_vary_bisect_finds_the_time_zone(tmp_path: Path) -> None:
    tape = _build(tmp_path, "date -d @0 +%H > out/hour.txt")
    out = buildtape("replay", tape, "--vary", "tz,umask,path,locale", "--bisect")
    lines = out.stdout.decode().splitlines()
    assert out.returncode == 1
    assert "not reproducible under variation: out/hour.txt" in lines
    assert "responsible variation: tz (3 varied runs)" in lines  # ceil(log2 4) + 1
    assert "varied locale,path,tz,umask: out/hour.txt" in lines


def test_vary_path_catches_an_embedded_build_path(tmp_path: Path) -> None:
    tape = _build(tmp_path, "pwd > out/where.txt")
    out = buildtape("replay", tape, "--vary", "path")
    assert out.returncode == 1
    assert "not reproducible under variation: out/where.txt" in out.stdout.decode().splitlines()


def test_vary_separates_plain_nondeterminism(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("nondeterministic")
    tape = tmp_path / "nd.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    out = buildtape("replay", tape, "--vary", "tz,umask")
    lines = out.stdout.decode().splitlines()
    assert out.returncode == 0
    assert "not reproducible even without variation: out/stamp.txt" in lines
    assert "reproducible under tz,umask" in lines


def test_unknown_variation_is_a_usage_error_before_anything_runs(
    c_make_tape: tuple[Path, Path],
) -> None:
    tape, _ = c_make_tape
    out = buildtape("replay", tape, "--vary", "tz,moon-phase")
    assert out.returncode == 2
    assert out.stdout == b""  # nothing was replayed, nobody was asked
    assert out.stderr.decode().strip().splitlines()[-1] == (
        "Error: Invalid value for '--vary': unknown variation moon-phase; choose from "
        "time, tz, locale, umask, path, env-order, jobs"
    )


def _on_a_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    code, seen = answer_on_a_terminal(args, answer)
    return code, seen.decode(errors="replace")


def test_tape_from_another_host_asks_before_running(
    c_make_tape: tuple[Path, Path], tmp_path: Path
) -> None:
    tape, _ = c_make_tape

    def elsewhere(m: dict[str, Any]) -> None:
        m["host"]["hostname"] = "build-agent-7"

    foreign = rewrite(tape, tmp_path / "foreign.tape", elsewhere)
    sandbox = tmp_path / "sandbox"
    code, text = _on_a_terminal(["replay", str(foreign), "--workdir", str(sandbox)], b"n\n")
    assert "it says it comes from build-agent-7" in text
    assert "Replaying runs: make -j2" in text
    assert code == 8 and "aborted; nothing was run" in text
    assert not sandbox.exists()
    code, text = _on_a_terminal(["replay", str(foreign), "--workdir", str(sandbox)], b"y\n")
    assert code == 0 and "reproduced: 7 same" in text
    code, text = _on_a_terminal(
        ["replay", str(foreign), "--yes", "--workdir", str(tmp_path / "s2")], b""
    )
    assert code == 0 and "Run it here?" not in text


def test_redacted_variables_are_left_unset_unless_passed(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    import os

    ws = fixture_copy("nondeterministic")
    env = {**os.environ, "UPLOAD_TOKEN": "tok-abcdef-123456"}
    tape = tmp_path / "t.tape"
    buildtape(
        "record",
        "-q",
        "-o",
        tape,
        "--",
        "sh",
        "-c",
        'echo "${UPLOAD_TOKEN:-unset}" > seen.txt',
        cwd=ws,
        env=env,
        check=True,
    )
    without = {k: v for k, v in os.environ.items() if k != "UPLOAD_TOKEN"}
    out = buildtape("replay", tape, "--pass-env", "UPLOAD_TOKEN", env=without).stdout.decode()
    assert "env: UPLOAD_TOKEN was named by --pass-env but is not set here; left unset" in out
    assert "different: seen.txt" in out  # the build saw no token this time
    out = buildtape("replay", tape, env=env).stdout.decode()
    assert "env: UPLOAD_TOKEN was redacted in the tape; left unset" in out  # never filled unasked
    assert "different: seen.txt" in out
    out = buildtape("replay", tape, "--pass-env", "UPLOAD_TOKEN", env=env).stdout.decode()
    assert "env: UPLOAD_TOKEN: using this environment's value (--pass-env)" in out
    assert "reproduced:" in out


def test_diverged_replay_reports_the_diff_engines_cause(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("nondeterministic")
    tape = tmp_path / "nd.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    lines = buildtape("replay", tape).stdout.decode().splitlines()
    cause = [line for line in lines if line.startswith("diff: ")]
    assert cause and cause[0].startswith(
        "diff: nondeterministic: same command and inputs, different outputs"
    )
