"""End-to-end: real builds from fixtures/ recorded through the real CLI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from recorder.preload import build_shim
from tests.conftest import buildtape, needs_strace, spawn_buildtape

C_FILES = ["main.c", "vec.c", "strbuf.c", "hash.c", "parse.c", "stats.c"]
HEADERS = ["common.h", "vec.h", "strbuf.h"]


def show_json(tape: Path) -> dict[str, Any]:
    out = buildtape("show", "--json", tape, check=True)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def plain(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


def shell_status(rc: int) -> int:
    """What a shell reports for a child's status: 128+N for death by signal N."""
    return 128 - rc if rc < 0 else rc


@needs_strace
@pytest.mark.parametrize(
    ("fixture", "argv"),
    [
        ("c-make", ["make", "-j1"]),
        ("c-make-failing", ["make", "-j1"]),
        ("c-make", ["sh", "-c", "echo to-out; echo to-err >&2; kill -TERM $$"]),
    ],
    ids=["success", "failing-compile", "killed-by-signal"],
)
def test_output_and_status_pass_through_unchanged(
    fixture_copy: Callable[..., Path], tmp_path: Path, fixture: str, argv: list[str]
) -> None:
    direct = plain(argv, fixture_copy(fixture, "plain"))
    ws = fixture_copy(fixture, "recorded")
    tape = tmp_path / "b.tape"
    rec = buildtape("record", "-q", "-o", tape, "--", *argv, cwd=ws)
    assert rec.stdout == direct.stdout
    assert rec.stderr == direct.stderr
    assert rec.returncode == shell_status(direct.returncode)
    assert direct.stdout or direct.stderr  # the comparison compared something
    view = show_json(tape)
    expected = {0: "succeeded"}.get(rec.returncode, "failed")
    assert view["status"] == expected


@needs_strace
def test_own_summary_is_one_extra_stderr_line(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make")
    rec = buildtape("record", "-o", tmp_path / "t.tape", "--", "sh", "-c", "echo err >&2", cwd=ws)
    lines = rec.stderr.decode().splitlines()
    assert lines[0] == "err"
    assert len(lines) == 2 and lines[1].startswith("buildtape: succeeded")
    assert str(tmp_path / "t.tape") in lines[1]


@needs_strace
@pytest.mark.parametrize("file_events", ["preload", "strace"])
def test_c_make_process_tree_has_one_compile_per_source(
    fixture_copy: Callable[..., Path], tmp_path: Path, file_events: str
) -> None:
    ws = fixture_copy("c-make")
    tape = tmp_path / "c.tape"
    buildtape(
        "record",
        "-q",
        "--file-events",
        file_events,
        "-o",
        tape,
        "--",
        "make",
        "-j2",
        cwd=ws,
        check=True,
    )
    view = show_json(tape)
    # --file-events preload: the interposer alone; strace: strace sees processes and files.
    mode = "preload" if file_events == "preload" else "strace"
    # Every process of make -j2 ran the interposer: no second walk was needed.
    changes = "seen" if mode == "preload" else "walk"
    assert view["tracing"] == {
        "mode": mode,
        "files": file_events,
        "notice": None,
        "changes": changes,
        "made_dirs": True,
    }
    procs = {p["id"]: p for p in view["processes"]}
    children: dict[int, list[int]] = {}
    for p in procs.values():
        if p["parent_id"] is not None:
            children.setdefault(p["parent_id"], []).append(p["id"])

    def subtree_reads(pid: int) -> set[str]:
        reads = set(procs[pid]["reads"])
        for c in children.get(pid, []):
            reads |= subtree_reads(c)
        return reads

    make = [p for p in procs.values() if p["argv"][:1] == ["make"]]
    assert len(make) == 1
    for src in C_FILES:
        compiles = [
            p
            for p in procs.values()
            if "-c" in p["argv"] and src in p["argv"] and p["parent_id"] == make[0]["id"]
        ]
        assert len(compiles) == 1, f"expected one compile of {src}, got {compiles}"
        p = compiles[0]
        assert p["argv"][0] == "cc" and p["exit_code"] == 0
        assert p["cwd"] == str(ws)
        reads = subtree_reads(p["id"])
        assert src in reads
        assert set(HEADERS) <= reads, f"{src}: missing header reads in {sorted(reads)}"
        assert p["start_s"] <= p["end_s"] <= view["duration_s"] + 0.5
    link = [p for p in procs.values() if "app" in p["argv"] and p["parent_id"] == make[0]["id"]]
    assert len(link) == 1
    assert {"main.o", "vec.o"} <= subtree_reads(link[0]["id"])
    assert view["toolchain"] and any(
        t["name"] in ("cc", "gcc") and t["version"] for t in view["toolchain"]
    )
    external = {e["path"] for e in view["external"]}
    assert any(path.endswith("/cc1") for path in external), "the compiler proper is fingerprinted"
    assert any(path.endswith("stdio.h") for path in external), "system headers are fingerprinted"


@needs_strace
def test_outputs_have_the_right_sha256(fixture_copy: Callable[..., Path], tmp_path: Path) -> None:
    ws = fixture_copy("c-make")
    tape = tmp_path / "c.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, check=True)
    view = show_json(tape)
    outputs = {o["path"]: o for o in view["outputs"]}
    assert set(outputs) == {"app", *(c.replace(".c", ".o") for c in C_FILES)}
    for path, out in outputs.items():
        data = (ws / path).read_bytes()
        assert out["change"] == "created"
        assert out["sha256"] == hashlib.sha256(data).hexdigest()
        assert out["size"] == len(data)
    inputs = {i["path"]: i for i in view["inputs"]}
    assert inputs["main.c"]["sha256"] == hashlib.sha256((ws / "main.c").read_bytes()).hexdigest()
    assert inputs["main.c"]["read"] is True and inputs["Makefile"]["read"] is True


SECRETS = {
    "MY_API_TOKEN": "tok-8f3a9c2e71d44b0f",
    "DB_PASSWORD": "hunter2-correct-horse",
    "SIGNING_KEY": "k3y-material-55aa",
    "HARMLESS_NAME": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
}
URL_PASSWORD = "pa55-in-url-77"


@needs_strace
def test_planted_secrets_appear_in_no_byte_of_the_tape(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make")
    # Files the build never touches are listed by name only: a name, or a link's target,
    # that holds a secret must not carry it into the tape either.
    (ws / f"notes-{SECRETS['DB_PASSWORD']}.txt").write_text("untouched\n")
    (ws / "latest").symlink_to(f"notes-{SECRETS['DB_PASSWORD']}.txt")
    env = {
        **os.environ,
        **SECRETS,
        "MIRROR_URL": f"https://builder:{URL_PASSWORD}@mirror.example/simple",
    }
    script = (
        'echo "$MY_API_TOKEN $DB_PASSWORD"; echo "$SIGNING_KEY $HARMLESS_NAME" >&2; '
        '/bin/echo "arg:$DB_PASSWORD" > /dev/null; echo "$MIRROR_URL"; '
        'printf "%s" "$MY_API_TOKEN" > leaked.txt; '
        'printf "{\\"kind\\":\\"event\\",\\"name\\":\\"e\\",\\"data\\":{\\"v\\":\\"%s\\"}}\\n" '
        '"$SIGNING_KEY" >> "$BUILDTAPE_EVENTS"'
    )
    tape = tmp_path / "s.tape"
    rec = buildtape("record", "-o", tape, "--", "sh", "-c", script, cwd=ws, env=env)
    assert rec.returncode == 0, rec.stderr
    # The build's own output is passed through untouched...
    assert SECRETS["MY_API_TOKEN"].encode() in rec.stdout
    # ...and the secret in an output file is reported by path.
    assert b"leaked.txt" in rec.stderr and b"secret" in rec.stderr
    with zstandard.ZstdDecompressor().stream_reader(tape.open("rb"), read_across_frames=True) as r:
        raw = r.read()
    assert len(raw) > 10_000  # really decompressed: manifest, sources, streams
    for value in [*SECRETS.values(), URL_PASSWORD]:
        assert value.encode() not in raw, f"secret {value!r} leaked into the tape"
    view = show_json(tape)
    for name in SECRETS:
        assert view["env"][name] == "[REDACTED]"
    assert view["env"]["MIRROR_URL"] == "https://builder:[REDACTED]@mirror.example/simple"
    assert {"MY_API_TOKEN", "DB_PASSWORD", "SIGNING_KEY", "HARMLESS_NAME", "MIRROR_URL"} <= set(
        view["redacted"]
    )
    warnings = [w for w in view["warnings"] if w["kind"] == "secret_in_output"]
    assert [w["path"] for w in warnings] == ["leaked.txt"]
    stdout = buildtape("show", "--json", tape).stdout
    assert b"[REDACTED]" in stdout


@needs_strace
def test_sigkill_of_recorder_leaves_no_file_under_final_name(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make")
    tape = tmp_path / "killed.tape"
    proc = spawn_buildtape(
        "record",
        "-q",
        "-o",
        tape,
        "--",
        "sh",
        "-c",
        "make >/dev/null && sleep 30",
        cwd=ws,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # A group of its own: the build the killed recorder leaves behind is ended by it,
        # and nothing else on the machine that happens to run `sleep 30`.
        start_new_session=True,
    )
    try:
        # Waits as long as the recorder runs (a loaded machine builds slowly); the bound
        # only keeps a hang from lasting forever.
        deadline = time.monotonic() + 600
        while not list(tmp_path.glob(".killed.tape.*.partial")):
            assert proc.poll() is None, "the recorder ended before it started writing"
            assert time.monotonic() < deadline, "the recorder never started writing"
            time.sleep(0.05)
        while not (ws / "app").exists():  # mid-build: blobs are being written
            assert proc.poll() is None, "the recorder ended before the build made app"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not tape.exists()
    partial = list(tmp_path.glob(".killed.tape.*.partial"))
    assert partial, "the temporary file is where the killed recorder left it"
    assert buildtape("verify", partial[0]).returncode == 3


@needs_strace
def test_sigint_gives_interrupted_tape_and_reaches_the_build(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make")
    tape = tmp_path / "int.tape"
    script = "trap 'echo got-int > marker; exit 9' INT; echo ready; while :; do sleep 0.1; done"
    proc = spawn_buildtape(
        "record",
        "-q",
        "-o",
        tape,
        "--",
        "sh",
        "-c",
        script,
        cwd=ws,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 9, err
    assert (ws / "marker").read_text() == "got-int\n"
    view = show_json(tape)
    assert view["status"] == "interrupted"
    assert view["exit_code"] == 9
    assert any(e["kind"] == "build_interrupted" for e in view["events"])


@pytest.mark.parametrize(
    "how", ["--trace proc", "strace missing from PATH", "no strace and no C compiler"]
)
def test_fallback_gives_valid_tape(
    fixture_copy: Callable[..., Path], tmp_path: Path, how: str
) -> None:
    ws = fixture_copy("c-make")
    tape = tmp_path / "f.tape"
    env = dict(os.environ)
    args = ["record", "-o", str(tape)]
    if how == "--trace proc":
        args += ["--trace", "proc"]
    else:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("sh", "sleep", "cat"):
            (bin_dir / tool).symlink_to(f"/bin/{tool}")
        env["PATH"] = str(bin_dir)
    if how == "strace missing from PATH":
        # A machine without strace still has its C compiler, which this PATH hides too: the
        # interposer is built first, as any recording there would have, not left to whether
        # an earlier test built it in ~/.cache (a fresh machine, or this test run alone).
        env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
        assert build_shim({**os.environ, "XDG_CACHE_HOME": env["XDG_CACHE_HOME"]}).library
    if how == "no strace and no C compiler":
        env["XDG_CACHE_HOME"] = str(tmp_path / "empty-cache")  # no interposer built before
    script = "echo built > out.txt; sleep 0.3; cat out.txt"
    rec = buildtape(*args, "--", "sh", "-c", script, cwd=ws, env=env)
    assert rec.returncode == 0, rec.stderr
    assert rec.stdout == b"built\n"
    notes = [
        line for line in rec.stderr.decode().splitlines() if line.startswith("buildtape: note:")
    ]
    assert buildtape("verify", tape).returncode == 0
    view = show_json(tape)
    assert [o["path"] for o in view["outputs"]] == ["out.txt"]
    root = view["processes"][0]
    assert root["argv"] == ["sh", "-c", script] and root["exit_code"] == 0
    # The 0.3 s sleep is seen as a child of the shell (by the interposer or the poller).
    assert any(
        p["argv"][:1] == ["sleep"] and p["parent_id"] == root["id"] for p in view["processes"]
    )
    if how == "no strace and no C compiler":
        assert len(notes) == 1
        assert "strace is not installed" in notes[0] and "full fidelity" in notes[0]
        assert view["tracing"] == {
            "mode": "proc",
            "files": "none",
            "notice": notes[0][17:],
            "changes": "walk",
            "made_dirs": False,
        }
        # Nothing sees file events: the workspace was snapshotted whole.
        assert all(e["sha256"] for e in view["inputs"])
        return
    assert notes == []
    # strace missing costs nothing: the interposer needs neither strace nor ptrace.
    expected = "proc" if how == "--trace proc" else "preload"
    changes = "walk" if how == "--trace proc" else "seen"
    assert view["tracing"] == {
        "mode": expected,
        "files": "preload",
        "notice": None,
        "changes": changes,
        "made_dirs": True,
    }
    writers = [p for p in view["processes"] if "out.txt" in p["writes"]]
    assert [p["id"] for p in writers] == [root["id"]]


def test_strace_asked_for_but_missing_runs_nothing_and_writes_nothing(tmp_path: Path) -> None:
    """The strace probe runs beside the workspace scan; its refusal still stops the
    recording before the build starts, with one line, exit 125, and no tape or partial."""
    ws = tmp_path / "ws"
    ws.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to("/bin/sh")
    (bin_dir / "touch").symlink_to(shutil.which("touch") or "/usr/bin/touch")
    env = {**os.environ, "PATH": str(bin_dir)}
    rec = buildtape("record", "--trace", "strace", "--", "sh", "-c", "touch ran",
                    cwd=ws, env=env)  # fmt: skip
    assert rec.returncode == 125
    lines = rec.stderr.decode().splitlines()
    assert len(lines) == 1 and "--trace strace was asked for" in lines[0], lines
    assert not (ws / "ran").exists()
    assert [p for p in ws.rglob("*") if p.is_file()] == []


@needs_strace
def test_events_from_a_shell_step_and_a_malformed_line(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make")
    script = (
        'echo \'{"kind": "metric", "name": "objects", "value": 6, "unit": "files"}\' >> "$BUILDTAPE_EVENTS"; '
        'echo "this is not json" >> "$BUILDTAPE_EVENTS"; '
        'now=$(date +%s.%N); end=$(awk "BEGIN{printf \\"%.6f\\", $now + 0.5}"); '
        'echo "{\\"kind\\": \\"span\\", \\"name\\": \\"link\\", \\"start\\": $now, \\"end\\": $end}" >> "$BUILDTAPE_EVENTS"; '
        'echo \'{"kind": "event", "name": "cache", "data": {"hit": true}}\' >> "$BUILDTAPE_EVENTS"; '
        'echo \'{"kind": "metric", "name": "bad", "value": "six"}\' >> "$BUILDTAPE_EVENTS"'
    )
    tape = tmp_path / "e.tape"
    rec = buildtape("record", "-q", "-o", tape, "--", "sh", "-c", script, cwd=ws)
    assert rec.returncode == 0, rec.stderr
    events = show_json(tape)["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "build_started" and kinds[-1] == "build_completed"
    metric = [e for e in events if e["kind"] == "metric"]
    assert metric == [
        {"t": metric[0]["t"], "kind": "metric", "name": "objects", "value": 6.0, "unit": "files"}
    ]
    span = [e for e in events if e["kind"] == "span"]
    assert len(span) == 1 and span[0]["name"] == "link"
    assert span[0]["end_s"] - span[0]["start_s"] == pytest.approx(0.5, abs=1e-5)
    assert [e["data"] for e in events if e["kind"] == "event"] == [{"hit": True}]
    invalid = sorted((e["line"], e["reason"]) for e in events if e["kind"] == "invalid_event")
    assert invalid[0][0] == 2 and invalid[0][1].startswith("not JSON")
    assert invalid[1] == (5, "metric value must be a finite number")
    assert {"process_started", "process_exited"} <= set(kinds)


@needs_strace
def test_pty_when_stdout_is_a_terminal(fixture_copy: Callable[..., Path], tmp_path: Path) -> None:
    import pty

    ws = fixture_copy("c-make")
    tape = tmp_path / "tty.tape"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "buildtape",
            "record",
            "-q",
            "-o",
            str(tape),
            "--",
            "sh",
            "-c",
            "if [ -t 1 ]; then echo stdout-is-tty; fi; if [ -t 2 ]; then echo e; else echo err-piped >&2; fi",
        ],
        cwd=ws,
        stdout=slave,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    _, err = proc.communicate(timeout=60)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0
    assert b"stdout-is-tty" in seen
    assert err == b"err-piped\n"
    view = show_json(tape)
    assert view["status"] == "succeeded"
    # The tape holds the bytes the build wrote, not the terminal's \r\n rewriting.
    from recorder.tape import open_tape

    with open_tape(tape) as t:
        assert t.stream("stdout") == b"stdout-is-tty\n"
        assert t.stream("stderr") == b"err-piped\n"


def test_command_not_found_is_127_with_one_line(tmp_path: Path) -> None:
    rec = buildtape(
        "record", "-o", tmp_path / "x.tape", "--", "no-such-build-tool-xyz", cwd=tmp_path
    )
    assert rec.returncode == 127
    assert rec.stderr.decode().splitlines() == [
        "buildtape: error: command not found: no-such-build-tool-xyz (not on PATH)"
    ]
    assert not (tmp_path / "x.tape").exists()
    assert not list(tmp_path.glob(".x.tape*"))


@needs_strace
def test_show_names_the_failing_compile_and_its_error_line(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make-failing")
    tape = tmp_path / "f.tape"
    rec = buildtape("record", "-q", "-o", tape, "--", "make", "-j1", cwd=ws)
    assert rec.returncode == 2
    view = show_json(tape)
    procs = {p["id"]: p for p in view["processes"]}
    [failure] = view["failing_steps"]
    step, origin = procs[failure["id"]], procs[failure["origin_id"]]
    assert step["argv"][0] == "cc" and "parse.c" in step["argv"] and step["exit_code"] == 1
    assert origin["exe"].endswith("cc1") and origin["parent_id"] == step["id"]
    text = buildtape("show", tape, check=True).stdout.decode()
    failing_block = text.split("Failing steps\n", 1)[1].split("\n\n", 1)[0]
    assert "cc -O2 -Wall -c parse.c -o parse.o" in failing_block
    marked = [line for line in failing_block.splitlines() if line.lstrip().startswith("> ")]
    # gcc's quotes depend on the locale; the position and the message do not.
    assert len(marked) == 1 and marked[0].startswith("  > parse.c:9:25: error: expected ")


@needs_strace
def test_slowest_steps_list_each_compile_once(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make")
    tape = tmp_path / "c.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", "-j2", cwd=ws, check=True)
    text = buildtape("show", tape, check=True).stdout.decode()
    block = text.split("Slowest steps\n", 1)[1].split("\n\n", 1)[0].splitlines()
    commands = [line.split(None, 2)[2] for line in block]
    assert len(commands) == 7  # six compiles and the link, nothing nested inside them
    assert all(c.startswith("cc -O2 -Wall") for c in commands)


def test_links_pointing_out_of_the_workspace_are_left_out(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "inside.txt").write_text("x")
    os.symlink("inside.txt", ws / "ok-link")
    os.symlink("/etc/hostname", ws / "absolute-link")
    os.symlink("../../elsewhere", ws / "climbing-link")
    tape = tmp_path / "t.tape"
    buildtape("record", "-q", "--no-store", "--trace", "none", "-o", tape, "--",
              "sh", "-c", "ln -s /usr made-link", cwd=ws, check=True)  # fmt: skip
    data = show_json(tape)  # the reader would refuse an escaping link
    recorded = {e["path"] for e in data["inputs"]} | {e["path"] for e in data["outputs"]}
    assert {"inside.txt", "ok-link"} <= recorded
    assert not recorded & {"absolute-link", "climbing-link", "made-link"}


def test_exclude_globs_match_the_relative_path_or_the_file_name(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "cache").mkdir()
    for rel in ("src/a.c", "src/a.log", "cache/big.bin", "top.log", "keep.txt", "src/keep.o"):
        (ws / rel).write_text(rel)
    tape = tmp_path / "t.tape"
    buildtape("record", "-q", "--no-store", "--trace", "none", "--exclude", "*.log",
              "--exclude", "cache", "--exclude", "src/*.o", "-o", tape, "--",
              "sh", "-c", "echo new > made.log; echo new > made.txt; echo o > src/new.o",
              cwd=ws, check=True)  # fmt: skip
    data = show_json(tape)
    assert {e["path"] for e in data["inputs"]} == {"src/a.c", "keep.txt"}
    assert {e["path"] for e in data["outputs"]} == {"made.txt"}
