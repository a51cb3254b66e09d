"""Capture by observation (format 1.1): what the interposer sees, what the tape stores.

Every test runs a real build under the real CLI and reads the tape back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recorder.tape import open_tape
from tests.conftest import buildtape, needs_strace, static_executable

OLD = 1_500_000_000  # an mtime long before any build here


def manifest(tape: Path) -> dict[str, Any]:
    with open_tape(tape) as t:
        return t.manifest.to_dict()


def blob_count(tape: Path) -> int:
    from recorder.container import TapeReader

    with TapeReader(tape) as r:
        return len(list(r.blob_digests()))


def record(
    ws: Path, tape: Path, *argv: str, extra: tuple[str, ...] = (), **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    out = buildtape("record", "-q", "-o", tape, *extra, "--", *argv, cwd=ws, **kw)
    assert out.returncode in (0, kw.get("expect", 0)), out.stderr.decode()
    return out


def test_one_file_build_in_a_large_workspace_stores_only_what_it_touched(tmp_path: Path) -> None:
    ws = tmp_path / "big"
    for i in range(40):
        d = ws / "vendor" / f"pkg{i:02d}"
        d.mkdir(parents=True)
        for j in range(75):  # 3,000 files nobody reads
            (d / f"f{j}.js").write_text(f"module.exports = {i * j};\n" * 20)
    (ws / "main.c").write_text("int main(void) { return 0; }\n")
    (ws / "Makefile").write_text("app: main.c\n\tcc -o app main.c\n")
    tape = tmp_path / "big.tape"
    record(ws, tape, "make")
    m = manifest(tape)
    listed = {e["path"]: e for e in m["inputs"]}
    assert len(listed) == 3002
    stored = sorted(p for p, e in listed.items() if e.get("stored"))
    assert stored == ["Makefile", "main.c"]
    assert all(e["sha256"] is None for p, e in listed.items() if p.startswith("vendor/"))
    assert all(isinstance(e["mtime_ns"], int) for e in listed.values())
    assert {d["path"] for d in m["directories"]} >= {"vendor", "vendor/pkg00"}
    # In the tape itself (format 1.3), the untouched files are compact rows, not entries.
    from recorder.container import TapeReader

    with TapeReader(tape) as r:
        raw = r.read_manifest()
    assert sorted(e["path"] for e in raw["inputs"]) == ["Makefile", "main.c"]
    rows = {row[0]: row for row in raw["listed"]}
    f0 = ws / "vendor/pkg00/f0.js"
    assert len(rows) == 3000 and rows["vendor/pkg00/f0.js"][1:3] == [0o100644, f0.stat().st_size]
    assert rows["vendor/pkg00/f0.js"][3] == listed["vendor/pkg00/f0.js"]["mtime_ns"]
    # The two sources, the program, the streams, the Python samples: a handful, not 3,000.
    assert blob_count(tape) < 10
    assert os.path.getsize(tape) < 200_000
    out = buildtape("replay", tape)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    assert "reproduced" in out.stdout.decode()


def test_prebuild_content_of_overwritten_truncated_renamed_and_deleted_files(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    old = {name: f"old {name}\n".encode() * 3 for name in ("a", "b", "c", "d", "e", "f")}
    for name, data in old.items():
        (ws / name).write_bytes(data)
        os.utime(ws / name, (OLD, OLD))
    script = (
        "echo new-a > a; : > b; echo new-c > tmp && mv tmp c; rm d; echo more >> e; "
        "python3 -c \"import os; os.truncate('f', 2)\"; cat a b c e > all"
    )
    tape = tmp_path / "t.tape"
    record(ws, tape, "sh", "-c", script)
    m = manifest(tape)
    inputs = {e["path"]: e for e in m["inputs"]}
    outputs = {e["path"]: e for e in m["outputs"]}
    from recorder.container import TapeReader

    with TapeReader(tape) as r:
        for name, data in old.items():
            entry = inputs[name]
            assert entry["sha256"] == hashlib.sha256(data).hexdigest(), name
            assert entry.get("stored"), name
            assert r.read_blob(entry["sha256"]) == data, name
            assert entry["mtime_ns"] == OLD * 10**9
    assert outputs["d"]["change"] == "deleted"
    assert {outputs[n]["change"] for n in "abcef"} == {"modified"}
    assert outputs["all"]["change"] == "created"
    out = buildtape("replay", tape)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()


@pytest.mark.parametrize("trace", ["auto", pytest.param("strace", marks=needs_strace)])
def test_a_rewrite_that_puts_the_mtime_back_is_a_change(tmp_path: Path, trace: str) -> None:
    # Same size, same mtime (touch -r, cp -p, tar x do this), same inode: only the ctime,
    # which no call can set, says the file changed. Both ways of finding changes (the
    # interposer's records, and the second walk of --trace strace) look at it.
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "data.txt").write_bytes(b"old\n")
    os.utime(ws / "data.txt", (OLD, OLD))
    tape = tmp_path / "t.tape"
    script = f"echo new > data.txt && touch -d @{OLD} data.txt"
    record(ws, tape, "sh", "-c", script, extra=("--trace", trace))
    assert (ws / "data.txt").stat().st_mtime_ns == OLD * 10**9
    m = manifest(tape)
    assert m["tracing"]["changes"] == ("seen" if trace == "auto" else "walk")
    outputs = {e["path"]: e for e in m["outputs"]}
    assert outputs["data.txt"]["change"] == "modified", m["outputs"]
    assert outputs["data.txt"]["sha256"] == hashlib.sha256(b"new\n").hexdigest()
    inputs = {e["path"]: e for e in m["inputs"]}
    assert inputs["data.txt"]["sha256"] == hashlib.sha256(b"old\n").hexdigest()


@pytest.mark.parametrize("trace", ["auto", pytest.param("strace", marks=needs_strace)])
def test_a_fork_that_never_execs_has_its_parents_argv(tmp_path: Path, trace: str) -> None:
    # A subshell runs its parent's program: both tracers name it by the shell's argv (the
    # interposer gave it an empty one, strace's parser the parent's).
    ws = tmp_path / "ws"
    ws.mkdir()
    script = "( echo hi > sub.txt ); cat sub.txt > copy.txt"
    tape = tmp_path / "t.tape"
    record(ws, tape, "sh", "-c", script, extra=("--trace", trace))
    m = manifest(tape)
    paths = m["paths"]
    writers = [p for p in m["processes"] if "sub.txt" in [paths[i] for i in p["writes"]]]
    assert len(writers) == 1, m["processes"]
    sub = writers[0]
    root = next(p for p in m["processes"] if p["parent_id"] is None)
    assert sub["parent_id"] == root["id"]
    assert sub["argv"] == root["argv"] == ["sh", "-c", script]
    # The same program (the command's own exe names it as run, /usr/bin/sh; its subshell's
    # under the interposer names the file, /usr/bin/dash).
    assert os.path.realpath(sub["exe"]) == os.path.realpath(root["exe"])
    # The tape says it ran no program of its own: replaying it alone would run the whole
    # command again, so the replay names the step to replay instead.
    assert sub.get("forked") is True and "forked" not in root
    out = buildtape("replay", tape, "--step", str(sub["id"]))
    err = out.stderr.decode()
    from buildtape.exit_codes import ExitCode

    assert out.returncode == ExitCode.REPLAY_FAILED, err
    assert f"is a fork of step {root['id']}" in err and f"replay step {root['id']} instead" in err


PARALLEL_CD = """\
DIRS := $(patsubst %,d%,$(shell seq 1 12))
all: $(DIRS)
$(DIRS):
\t@mkdir -p $@ && cd $@ && sh -c 'pwd > where && cat where > /dev/null'
.PHONY: all $(DIRS)
"""


@pytest.mark.parametrize("trace", ["auto", pytest.param("strace", marks=needs_strace)])
def test_every_parallel_step_has_the_cwd_it_ran_in(tmp_path: Path, trace: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Makefile").write_text(PARALLEL_CD)
    for run in range(5):
        for d in ws.glob("d*"):
            shutil.rmtree(d)
        tape = tmp_path / f"p{run}.tape"
        record(ws, tape, "make", "-j4", extra=("--trace", trace))
        procs = manifest(tape)["processes"]
        inner = [p for p in procs if p["argv"][:2] == ["sh", "-c"] and "pwd" in p["argv"][2]]
        assert len(inner) == 12
        for p in inner:
            # The recipe's own shell ran `cd dN`: the inner sh must be in that directory.
            assert p["cwd"].startswith(str(ws) + "/d"), p


def test_paths_and_cwds_longer_than_the_interposers_first_buffers(tmp_path: Path) -> None:
    """The interposer sizes its buffers for common paths and makes a record again with
    PATH_MAX ones when a path is longer: nothing is lost past 512 bytes."""
    ws = tmp_path / "ws"
    deep = ws.joinpath(*[f"component-{i:02d}-" + "x" * 30 for i in range(20)])
    deep.mkdir(parents=True)
    assert len(str(deep)) > 700
    (deep / "in.txt").write_text("deep\n")
    (deep / "old.txt").write_text("before the build\n")
    os.utime(deep / "old.txt", (OLD, OLD))
    shutil.copy(shutil.which("cat") or "/bin/cat", deep / "mycat")
    rel = str(deep.relative_to(ws))
    script = (
        f'cd "{rel}" && ./mycat in.txt > out.txt && cat "$PWD/out.txt" > copy.txt'
        " && echo overwritten > old.txt"
    )
    tape = tmp_path / "deep.tape"
    record(ws, tape, "sh", "-c", script)
    with open_tape(tape) as t:
        m = t.manifest
    mine = [p for p in m.processes if p.argv[:1] == ["./mycat"]]
    assert len(mine) == 1, [p.argv for p in m.processes]
    assert mine[0].cwd == str(deep)
    assert mine[0].exe == str(deep / "mycat")
    assert f"{rel}/in.txt" in mine[0].reads
    cat = [p for p in m.processes if p.argv[:1] == ["cat"]]
    assert len(cat) == 1 and cat[0].cwd == str(deep)
    assert f"{rel}/out.txt" in cat[0].reads  # named by its absolute path
    # The shell's redirections opened them for writing.
    written = {w for p in m.processes for w in p.writes}
    assert {f"{rel}/out.txt", f"{rel}/copy.txt"} <= written
    assert {f"{rel}/out.txt", f"{rel}/copy.txt"} <= {o.path for o in m.outputs}
    # Both files were written by processes the interposer saw: the tape needs no walk.
    assert m.tracing is not None and m.tracing.changes == "seen"
    # The interposer kept the overwritten file's old bytes under its long name too.
    before = next(e for e in m.inputs if e.path == f"{rel}/old.txt")
    assert before.sha256 == hashlib.sha256(b"before the build\n").hexdigest()
    assert before.blob is not None and before.mtime_ns == OLD * 10**9


PID_REUSE = """\
sh -c 'echo $$ > pid1; echo first > a.txt'
n=$(cat pid1)
echo $((n - 1)) > /proc/sys/kernel/ns_last_pid
sh -c 'echo $$ > pid2; cat a.txt > b.txt'
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="forcing a pid's reuse takes root (ns_last_pid in a new pid namespace) and unshare",
)
def test_a_pid_reused_within_the_build_is_two_processes(tmp_path: Path) -> None:
    """pids wrap on a busy machine (pid_max is 32,768 by default): in a pid namespace of its
    own, the build makes its next process get the pid of one that ended, as a wrap would."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "build.sh").write_text(PID_REUSE)
    tape = tmp_path / "reuse.tape"
    record(ws, tape, "unshare", "--pid", "--fork", "--mount-proc", "sh", "build.sh")
    first, second = (ws / "pid1").read_text(), (ws / "pid2").read_text()
    assert first == second, "the kernel did not reuse the pid: the test proves nothing"
    with open_tape(tape) as t:
        m = t.manifest
    shells = [p for p in m.processes if p.argv[:2] == ["sh", "-c"]]
    assert [p.argv[2].split(";")[0] for p in shells] == ["echo $$ > pid1", "echo $$ > pid2"]
    one, two = shells
    assert one.pid == two.pid == int(first)
    assert one.id != two.id and one.parent_id == two.parent_id
    assert "a.txt" in one.writes and "a.txt" not in two.writes
    assert one.end_s is not None and one.end_s <= two.start_s
    assert one.exit_code == two.exit_code == 0
    cat = [p for p in m.processes if p.argv == ["cat", "a.txt"]]
    assert len(cat) == 1 and cat[0].parent_id == two.id and "a.txt" in cat[0].reads


STATIC_C = r"""
#include <stdio.h>
int main(void) { FILE *f = fopen("from-static.txt", "w"); fputs("hi\n", f); fclose(f);
  f = fopen("input.txt", "r"); char b[8]; fgets(b, 8, f); fclose(f); return 0; }
"""


@pytest.fixture
def static_program(tmp_path: Path) -> Path:
    return static_executable(tmp_path, "static-tool", STATIC_C)


def test_static_executable_is_reported_with_the_remedy(
    tmp_path: Path, static_program: Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "input.txt").write_text("in\n")
    tape = tmp_path / "s.tape"
    # --trace preload: the interposer alone, without strace for the programs it cannot see.
    out = buildtape("record", "-o", tape, "--trace", "preload", "--", "sh", "-c",
                    f"{static_program}; true", cwd=ws)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    m = manifest(tape)
    static = [p for p in m["processes"] if p.get("static")]
    assert [p["exe"] for p in static] == [str(static_program)]
    warning = next(w for w in m["warnings"] if w["kind"] == "static_executables")
    assert "--trace strace" in warning["message"]
    assert "--trace strace" in out.stderr.decode()  # record's closing lines say it too
    assert "static" in buildtape("show", tape).stdout.decode()


@needs_strace
def test_static_executable_file_events_under_strace(tmp_path: Path, static_program: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "input.txt").write_text("in\n")
    tape = tmp_path / "s.tape"
    record(ws, tape, "sh", "-c", str(static_program), extra=("--trace", "strace"))
    m = manifest(tape)
    paths = m["paths"]
    proc = next(p for p in m["processes"] if p["exe"] == str(static_program))
    assert "from-static.txt" in [paths[i] for i in proc["writes"]]
    assert "input.txt" in [paths[i] for i in proc["reads"]]
    assert not any(w["kind"] == "static_executables" for w in m["warnings"])
    stored = {e["path"] for e in m["inputs"] if e.get("stored")}
    assert "input.txt" in stored


def test_inherited_descriptor_reaches_the_build(tmp_path: Path) -> None:
    r, w = os.pipe()
    write = f"import os; os.write({w}, b'through-fd\\n')"
    cmd = [sys.executable, "-m", "buildtape", "record", "-q", "-o", str(tmp_path / "fd.tape"),
           "--", sys.executable, "-c", write]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, pass_fds=(w,), capture_output=True)
    os.close(w)
    assert proc.returncode == 0, proc.stderr.decode()
    assert os.read(r, 100) == b"through-fd\n"
    os.close(r)


def test_recursive_make_keeps_its_jobserver(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "Makefile").write_text(
        "all: " + " ".join(f"t{i}" for i in range(4)) + "\nt%:\n\t@sleep 0.05; echo $@\n"
    )
    bt = f"{sys.executable} -m buildtape record -q -o {tmp_path}/inner.tape --"
    (tmp_path / "Makefile").write_text(f"all:\n\t+{bt} $(MAKE) -C inner\n")
    out = subprocess.run(["make", "-j4"], cwd=tmp_path, capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
    assert b"jobserver unavailable" not in out.stderr, out.stderr.decode()
    m = manifest(tmp_path / "inner.tape")
    assert "--jobserver-auth" in m["environment"]["vars"].get("MAKEFLAGS", "")


EXITS = textwrap.dedent(
    """\
    import os, subprocess, sys, time
    subprocess.run(["sh", "-c", "kill -9 $$"])                  # killed by a signal (vfork child)
    subprocess.run([sys.executable, "-c", "import os; os._exit(3)"])  # _exit, no atexit
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 4"], dict(os.environ))
    os.waitpid(pid, 0)
    # an orphan: its parent exits at once, it ends 0.3 s later with 5
    subprocess.run(["sh", "-c", "(sleep 0.3; exit 5) & exit 0"])
    time.sleep(0.8)
    """
)


def test_every_process_has_its_exit_status_and_end_time(tmp_path: Path) -> None:
    (tmp_path / "exits.py").write_text(EXITS)
    tape = tmp_path / "x.tape"
    record(tmp_path, tape, sys.executable, "exits.py")
    procs = manifest(tape)["processes"]

    def find(pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        found = [p for p in procs if pred(p)]
        assert found, procs
        return found[0]

    killed = find(lambda p: p["argv"] == ["sh", "-c", "kill -9 $$"])
    assert killed["signal"] == "SIGKILL" and killed["end_s"] is not None
    exited = find(lambda p: p["argv"][-1:] == ["import os; os._exit(3)"])
    assert exited["exit_code"] == 3 and exited["end_s"] is not None
    spawned = find(lambda p: p["argv"] == ["sh", "-c", "exit 4"])
    assert spawned["exit_code"] == 4 and spawned["end_s"] is not None
    parent = find(lambda p: p["argv"] == ["sh", "-c", "(sleep 0.3; exit 5) & exit 0"])
    # The subshell: a fork that runs its parent's program.
    orphan = find(lambda p: p.get("parent_id") == parent["id"] and p.get("forked") is True)
    assert orphan["argv"] == parent["argv"]
    assert orphan["exit_code"] == 5
    # Its own end, not its parent's: it outlived the 0.3 s sleep it ran. (How soon the parent
    # exits after the fork is the scheduler's business, so no margin between the two ends.)
    assert orphan["end_s"] - orphan["start_s"] >= 0.3 - 1e-6
    assert orphan["end_s"] > parent["end_s"]
    for p in procs:
        assert p["end_s"] is not None, p


def test_tapes_never_hold_tapes_and_git_does_not_count_them(
    fixture_copy: Callable[..., Path],
) -> None:
    ws = fixture_copy("c-make")
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    subprocess.run(["git", "add", "."], cwd=ws, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        cwd=ws, check=True,
    )  # fmt: skip
    subprocess.run(["make", "-s"], cwd=ws, check=True)
    (ws / ".gitignore").write_text("*.o\napp\n")
    subprocess.run(["git", "add", ".gitignore"], cwd=ws, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "y"],
        cwd=ws,
        check=True,
    )
    sizes = []
    for i in range(4):
        tape = ws / f"run{i}.tape"
        record(ws, tape, "make", "-s")
        sizes.append(tape.stat().st_size)
        m = manifest(tape)
        assert not [e["path"] for e in m["inputs"] if e["path"].endswith(".tape")]
        assert m["git"]["dirty"] == []
    assert max(sizes) < min(sizes) * 1.5  # no growth from one recording to the next


def test_git_state_names_the_commit_the_branch_and_every_changed_path(tmp_path: Path) -> None:
    ws = tmp_path / "repo"
    ws.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=ws, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q", "-b", "main")
    for name in ("old name.txt", "kept.c", "edited.c"):
        (ws / name).write_text(f"{name}\n")
    git("add", ".")
    git("commit", "-qm", "one")
    git("mv", "old name.txt", "new name.txt")
    (ws / "edited.c").write_text("changed\n")
    (ws / "new dir").mkdir()
    (ws / "new dir" / "untracked.h").write_text("u\n")
    tape = tmp_path / "g.tape"
    record(ws, tape, "cat", "kept.c")
    git_state = manifest(tape)["git"]
    assert git_state["commit"] == git("rev-parse", "HEAD")
    assert git_state["branch"] == "main"
    # A rename counts both names; nothing of buildtape's own (.buildtape/) is counted.
    assert git_state["dirty"] == ["edited.c", "new dir/untracked.h", "new name.txt", "old name.txt"]
    git("checkout", "-q", "--detach")
    record(ws, tape, "cat", "kept.c")
    assert manifest(tape)["git"]["branch"] == "HEAD"  # detached, as git rev-parse says


@pytest.mark.parametrize(
    "trace", ["auto", "preload", pytest.param("strace", marks=needs_strace), "proc", "none"]
)
def test_every_trace_mode_records_a_tape_that_replays(
    fixture_copy: Callable[..., Path], tmp_path: Path, trace: str
) -> None:
    ws = fixture_copy("c-make")
    tape = tmp_path / f"{trace}.tape"
    record(ws, tape, "make", "-j2", extra=("--trace", trace))
    m = manifest(tape)
    assert m["status"] == "succeeded"
    expected = {"auto": "preload", "preload": "preload"}.get(trace, trace)
    assert m["tracing"]["mode"] == expected
    if trace != "none":
        assert any(p["argv"][:1] == ["cc"] for p in m["processes"])
    out = buildtape("replay", tape)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    assert json.loads(buildtape("show", "--json", tape, check=True).stdout)["status"] == "succeeded"


CHANGES = r"""
set -e
echo new > created.txt
mkdir -p newdir/deeper && echo n > newdir/deeper/f.txt
echo more >> appended.txt
chmod 755 mode.txt
touch -d @1600000000 touched.txt
python3 -c "import os; os.utime('utimed.txt', (1700000000, 1700000000))"
truncate -s 1 truncated.txt
rm removed.txt
rm -r gonedir
mv renamed.txt renamed-to.txt
ln -s created.txt link.txt
cat untouched/*.txt > /dev/null
"""


def test_after_the_build_every_kind_of_change_is_found_without_a_walk(tmp_path: Path) -> None:
    """Every process ran the interposer: what changed comes from the directories whose mtime
    moved and the paths the interposer saw changed. Each kind of change must be there, and
    nothing the build left alone."""
    ws = tmp_path / "ws"
    (ws / "gonedir" / "sub").mkdir(parents=True)
    (ws / "gonedir" / "sub" / "x.txt").write_text("x\n")
    (ws / "untouched").mkdir()
    for i in range(50):
        (ws / "untouched" / f"{i}.txt").write_text(f"{i}\n")
    for name in ("appended", "mode", "touched", "utimed", "truncated", "removed", "renamed"):
        (ws / f"{name}.txt").write_text(f"{name} before\n")
    for path in ws.rglob("*"):
        os.utime(path, (OLD, OLD))
    (ws / "build.sh").write_text(CHANGES)
    tape = tmp_path / "c.tape"
    record(ws, tape, "sh", "build.sh")
    m = manifest(tape)
    assert m["tracing"]["changes"] == "seen"
    changes = {o["path"]: o["change"] for o in m["outputs"]}
    assert changes == {
        "created.txt": "created",
        "newdir/deeper/f.txt": "created",
        "appended.txt": "modified",
        "mode.txt": "modified",
        "truncated.txt": "modified",
        "removed.txt": "deleted",
        "gonedir/sub/x.txt": "deleted",
        "renamed.txt": "deleted",
        "renamed-to.txt": "created",
        "link.txt": "created",
    }
    # Only their times changed (same bytes, same mode): touched, as a full walk says too,
    # and their pre-build content is known without a copy.
    assert not any(w["kind"] == "prebuild_content_lost" for w in m["warnings"])
    outputs = {o["path"]: o for o in m["outputs"]}
    assert outputs["mode.txt"]["mode"] & 0o777 == 0o755
    dirs = {(d["path"], d.get("change")) for d in m["directories"]}
    assert {("newdir", "created"), ("newdir/deeper", "created"), ("gonedir", "deleted")} <= dirs
    assert ("gonedir/sub", "deleted") in dirs


def test_a_step_output_that_a_later_step_replaced_is_kept_as_that_step_left_it(
    tmp_path: Path,
) -> None:
    """strip rewrites the program the link step made (a new file renamed over it); a
    later shell truncates and rewrites a file an earlier one wrote. The tape keeps each
    as its step left it, so a replay of that step alone has something to compare with."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "main.c").write_text('#include <stdio.h>\nint main(void) { puts("hi"); }\n')
    (ws / "Makefile").write_text(
        "all: prog note\n"
        "prog: main.c\n\tcc -g -o prog main.c\n\tstrip prog\n"
        "note:\n\techo first > note\n\tsh -c 'echo second > note'\n"
    )
    tape = tmp_path / "v.tape"
    record(ws, tape, "make")
    m = manifest(tape)
    procs = {p["id"]: p for p in m["processes"]}
    versions = {v["path"]: v for v in m["versions"]}
    assert set(versions) == {"prog", "note"}, versions  # and not main.c, which nobody replaced
    prog = versions["prog"]
    assert os.path.basename(procs[prog["replaced_by"]]["exe"]).endswith("strip")
    assert os.path.basename(procs[prog["written_by"]]["exe"]) in ("ld", "ld.bfd", "collect2")
    final = {o["path"]: o for o in m["outputs"]}
    assert prog["size"] > final["prog"]["size"] and prog["stored"]  # not yet stripped
    note = versions["note"]
    assert procs[note["replaced_by"]]["argv"][:2] == ["sh", "-c"]
    with open_tape(tape) as t:
        assert t.blob(note["sha256"]) == b"first\n"
        assert t.blob(prog["sha256"]).startswith(b"\x7fELF")


def test_a_change_the_interposer_cannot_see_is_found_by_a_walk(tmp_path: Path) -> None:
    """A process started with an emptied environment runs without the interposer: its
    in-place change (no directory mtime moves) is still in the tape."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "data.txt").write_text("before\n")
    os.utime(ws / "data.txt", (OLD, OLD))
    tape = tmp_path / "c.tape"
    record(ws, tape, "sh", "-c", "env -i /bin/sh -c 'echo after >> data.txt'")
    m = manifest(tape)
    assert m["tracing"]["changes"] == "walk"
    assert {o["path"]: o["change"] for o in m["outputs"]} == {"data.txt": "modified"}


@needs_strace
@pytest.mark.parametrize("shape", ["child", "command"])
def test_default_mode_traces_a_static_program_with_strace(
    tmp_path: Path, static_program: Path, shape: str
) -> None:
    """--trace auto: the interposer for the build, strace for just the static program."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "input.txt").write_text("in\n")
    (ws / "Makefile").write_text(f"all:\n\t{static_program}\n\tcat from-static.txt\n")
    tape = tmp_path / "s.tape"
    argv = ("make",) if shape == "child" else (str(static_program),)
    record(ws, tape, *argv)
    m = manifest(tape)
    assert m["tracing"]["mode"] == "preload"
    paths = m["paths"]
    proc = next(p for p in m["processes"] if p["exe"] == str(static_program))
    assert "input.txt" in [paths[i] for i in proc["reads"]]
    assert "from-static.txt" in [paths[i] for i in proc["writes"]]
    assert not proc.get("static") and proc["exit_code"] == 0
    assert proc["argv"] == [str(static_program)]
    assert not any(w["kind"] == "static_executables" for w in m["warnings"])
    if shape == "child":
        # The rest of the build stays with the interposer: make and cat, each once.
        names = sorted(os.path.basename(p["exe"]) for p in m["processes"])
        assert names == sorted(["make", "static-tool", "cat"]), names
        make = next(p for p in m["processes"] if os.path.basename(p["exe"]) == "make")
        assert proc["parent_id"] == make["id"]
    # Nothing of the recorder's own machinery is in the tape.
    assert not any("buildtape-" in p or "strace-" in p for p in paths), paths


def test_a_strace_that_cannot_trace_leaves_the_build_alone(
    tmp_path: Path, static_program: Path
) -> None:
    """Where strace is installed but cannot trace (a container without ptrace), the build
    runs exactly as without buildtape and the tape says what it could not see. Here the
    strace found on PATH is one that always fails: this machine's can trace."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "strace"
    fake.write_text("#!/bin/sh\necho 'ptrace: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "input.txt").write_text("in\n")
    tape = tmp_path / "s.tape"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = buildtape("record", "-o", tape, "--", "sh", "-c", f"{static_program} && cat "
                    "from-static.txt", cwd=ws, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode() == "hi\n"
    m = manifest(tape)
    assert any(w["kind"] == "static_executables" for w in m["warnings"])


@pytest.fixture
def go_module(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    if shutil.which("go") is None:
        pytest.fail("go is not installed (CI installs golang-go: see .ci/run)")
    ws = tmp_path / "gomod"
    ws.mkdir()
    (ws / "go.mod").write_text("module example.com/hello\n\ngo 1.19\n")
    (ws / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hi") }\n'
    )
    env = {**os.environ, "GOCACHE": str(tmp_path / "gocache"), "GOPATH": str(tmp_path / "gopath"),
           "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}  # fmt: skip
    return ws, env


def test_go_build_says_what_the_interposer_cannot_see(
    tmp_path: Path, go_module: tuple[Path, dict[str, str]]
) -> None:
    ws, env = go_module
    tape = tmp_path / "go.tape"
    out = buildtape("record", "-o", tape, "--trace", "preload", "--", "go", "build", "-o", "app",
                    ".", cwd=ws, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    m = manifest(tape)
    warning = next(w for w in m["warnings"] if w["kind"] == "static_executables")
    assert "go" in warning["message"] and "--trace strace" in warning["message"]
    assert "--trace strace" in out.stderr.decode()


@needs_strace
def test_go_build_under_strace_has_its_file_events(
    tmp_path: Path, go_module: tuple[Path, dict[str, str]]
) -> None:
    ws, env = go_module
    tape = tmp_path / "go.tape"
    out = buildtape("record", "-q", "-o", tape, "--trace", "strace", "--", "go", "build",
                    "-o", "app", ".", cwd=ws, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    m = manifest(tape)
    paths = m["paths"]
    readers = [p for p in m["processes"] if "main.go" in [paths[i] for i in p["reads"]]]
    assert any(os.path.basename(p["exe"]) == "compile" for p in readers), readers
    assert "app" in {o["path"] for o in m["outputs"]}
    stored = {e["path"] for e in m["inputs"] if e.get("stored")}
    assert {"main.go", "go.mod"} <= stored
    assert not any(w["kind"] == "static_executables" for w in m["warnings"])


@needs_strace
def test_go_build_in_default_mode_has_its_file_events(
    tmp_path: Path, go_module: tuple[Path, dict[str, str]]
) -> None:
    """--trace auto runs the go command's subtree under strace: compile is seen reading
    main.go, link writing the program, and the tape stores what replay needs."""
    ws, env = go_module
    (ws / "Makefile").write_text("app: main.go\n\tgo build -o app .\n")
    tape = tmp_path / "go.tape"
    out = buildtape("record", "-q", "-o", tape, "--", "make", cwd=ws, env=env)
    assert out.returncode == 0, out.stderr.decode()
    m = manifest(tape)
    assert m["tracing"]["mode"] == "preload"
    paths = m["paths"]
    readers = [p for p in m["processes"] if "main.go" in [paths[i] for i in p["reads"]]]
    assert any(os.path.basename(p["exe"]) == "compile" for p in readers), readers
    go = next(p for p in m["processes"] if os.path.basename(p["exe"]) == "go")
    make = next(p for p in m["processes"] if os.path.basename(p["exe"]) == "make")
    assert go["parent_id"] == make["id"] and go["argv"][:2] == ["go", "build"]
    assert {"main.go", "go.mod"} <= {e["path"] for e in m["inputs"] if e.get("stored")}
    assert "app" in {o["path"] for o in m["outputs"]}
    assert not any(w["kind"] == "static_executables" for w in m["warnings"])


@pytest.mark.parametrize("child_first", [False, True])
def test_spawned_child_keeps_the_name_it_was_run_as_in_either_order(
    tmp_path: Path, child_first: bool
) -> None:
    from recorder.interposer import InterposerLog

    """The child's own records (even its exit) can reach the log before its parent's
    posix_spawn returns: still one process, with its status from the parent's wait. Only
    a spawn after that wait, reusing the pid, is another process."""
    log = InterposerLog(tmp_path / "absent.log")
    spawn = "S\t10\t11\t1000000000\tcc\t2\tcc\t-c"
    image = "E\t11\t10\t1000000001\t/usr/bin/x86_64-linux-gnu-gcc-12\t/w\ttag\t2\tcc\t-c"
    exiting = "Q\t11\t1000000002"
    start = "E\t10\t1\t999000000\t/usr/bin/make\t/w\ttag\t1\tmake"
    wait = "W\t10\t11\t256\t1000000003"
    again = "S\t10\t11\t1000000004\tcc\t2\tcc\t-E"
    child = [image, exiting, spawn] if child_first else [spawn, image, exiting]
    for line in [start, *child, wait, again]:
        log.feed(line)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cc").symlink_to("/bin/true")
    records = log.finish(lambda pid: str(bin_dir), {})
    first = next(p for p in records.processes.values() if p.argv == ["cc", "-c"])
    assert first.exe == str(bin_dir / "cc")
    assert first.parent_pid == 10 and first.exit_code == 1
    assert first.recorded_pid == 11 and first.pid != 11
    assert [p.argv for p in records.processes.values()] == [["make"], ["cc", "-c"], ["cc", "-E"]]


def test_report_header_says_what_the_interposer_could_not_see(
    tmp_path: Path, static_program: Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "input.txt").write_text("in\n")
    tape = tmp_path / "s.tape"
    record(ws, tape, "sh", "-c", str(static_program), extra=("--trace", "preload"))
    html = tmp_path / "r.html"
    buildtape("report", tape, "-o", html, check=True)
    text = html.read_text()
    header = text[text.index("<header") : text.index("</header>")]
    assert "Not seen:" in header and "--trace strace" in header and "static-tool" in header


def test_snapshot_full_stores_every_workspace_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "docs").mkdir(parents=True)
    for i in range(20):
        (ws / "docs" / f"n{i}.txt").write_text(f"note {i}\n")
    (ws / "Makefile").write_text("out: \n\techo done > out\n")
    tape = tmp_path / "full.tape"
    record(ws, tape, "make", extra=("--snapshot", "full"))
    inputs = manifest(tape)["inputs"]
    assert len(inputs) == 21 and all(e.get("stored") for e in inputs)
    touched = tmp_path / "touched.tape"
    (ws / "out").unlink()
    record(ws, touched, "make")
    assert [e["path"] for e in manifest(touched)["inputs"] if e.get("stored")] == ["Makefile"]


def test_a_program_the_build_made_is_not_an_external_input(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "t.c").write_text("int main(void) { return 0; }\n")
    tape = tmp_path / "t.tape"
    record(ws, tape, "sh", "-c", "cc -o tool t.c && ./tool")
    m = manifest(tape)
    assert any(p["exe"] == str(ws / "tool") for p in m["processes"])
    assert not [e["path"] for e in m["external"] if e["path"].startswith(str(ws) + "/")]


def test_a_program_the_build_made_and_ran_is_upstream_not_another_tool(tmp_path: Path) -> None:
    tapes = []
    for side, value in (("a", 1), ("b", 2)):
        ws = tmp_path / "ws"  # the same directory for both, as in a rebuild
        if ws.exists():
            shutil.rmtree(ws)
        ws.mkdir()
        (ws / "gen.c").write_text(
            f'#include <stdio.h>\nint main(void) {{ printf("%d\\n", {value}); return 0; }}\n'
        )
        (ws / "Makefile").write_text(
            "out.txt: gen\n\t./gen > out.txt\ngen: gen.c\n\tcc -o gen gen.c\n"
        )
        tapes.append(tmp_path / f"{side}.tape")
        record(ws, tapes[-1], "make")
    out = buildtape("diff", *tapes)
    cause = next(
        line for line in out.stdout.decode().splitlines() if line.startswith("likely cause")
    )
    assert "gen.c changed" in cause, cause
    assert "another executable" not in cause, cause


def test_each_process_environment_is_a_delta_from_its_parents(tmp_path: Path) -> None:
    """What a step set or unset is in the tape beside it, redacted like the build's own."""
    ws = tmp_path / "ws"
    ws.mkdir()
    token = "tok-5f1d9e77c2a04b8e"
    (ws / "Makefile").write_text(
        "all:\n"
        "\tenv FOO=bar sh -c 'unset LC_BT_GONE; exec printenv FOO > out'\n"
        f"\tenv MY_API_TOKEN={token} sh -c 'true'\n"
        + "".join(f"\tenv STEP={i} true\n" for i in range(5))
    )
    tape = tmp_path / "e.tape"
    record(ws, tape, "make", "-s", env={**os.environ, "LC_BT_GONE": "1"})
    m = manifest(tape)
    by_argv = {tuple(p["argv"]): p for p in m["processes"]}
    # env, then sh, then printenv: one process (one pid), whose delta from make is what
    # make set for its children, what env set, and what sh unset (None).
    make_sets = {"MAKEFLAGS": "s", "MAKELEVEL": "1", "MFLAGS": "-s"}
    printenv = by_argv[("printenv", "FOO")]["env"]
    printenv.pop("PWD", None)  # sh sets it when the caller's PWD is another directory
    assert printenv == {**make_sets, "FOO": "bar", "LC_BT_GONE": None}
    assert by_argv[("sh", "-c", "true")]["env"] == {**make_sets, "MY_API_TOKEN": "[REDACTED]"}
    steps = sorted(p["env"]["STEP"] for p in m["processes"] if p["argv"] == ["true"])
    assert steps == ["0", "1", "2", "3", "4"]
    assert by_argv[("make", "-s")]["env"] == {}
    # The Makefile that sets it is a stored input, as written; the manifest has no copy.
    assert token not in json.dumps(m)


def test_an_environment_read_while_it_was_written_is_read_again(tmp_path: Path) -> None:
    """Two processes with one environment: the second may start, and be seen, while the
    first still writes the file. What was read of it then is not what the tape keeps."""
    from recorder.environments import EnvironmentFiles

    (tmp_path / "env").mkdir()
    saved = tmp_path / "env" / "t1"
    saved.write_bytes(b"A=1\0")
    files = EnvironmentFiles(tmp_path, None)
    files.prefetch({100: "t1"})
    with saved.open("ab") as f:
        f.write(b"B=2\0")
    files.prefetch({100: "t1", 101: "t1"})
    assert files.get("t1") == {"A": "1", "B": "2"}
    assert files.get("absent") is None


def test_the_collector_is_off_while_recording_and_restored_after(tmp_path: Path) -> None:
    """``record`` switches the cyclic garbage collector off for the recording (its walks
    over every process record were a measured part of the time after the build) and gives
    the caller back the collector as it found it, on success and on failure."""
    import gc

    from recorder.options import RecordOptions
    from recorder.record import RecordError, record

    (tmp_path / "in.txt").write_text("x\n")
    seen: list[bool] = []

    def options(*argv: str) -> RecordOptions:
        return RecordOptions(
            argv=argv, output=tmp_path / "t.tape", workspace=tmp_path, cwd=tmp_path,
            trace="none", stacks="none", use_tty=False,
        )  # fmt: skip

    assert gc.isenabled()
    result = record(options("cat", "in.txt"), while_building=lambda: seen.append(gc.isenabled()))
    assert result.exit_status == 0 and result.tape.exists()
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        record(options("cat", "in.txt"))
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
    with pytest.raises(RecordError):
        record(options("no-such-program-here"))
    assert gc.isenabled()
