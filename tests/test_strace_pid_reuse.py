"""A pid that a later process of the build reuses, seen through strace.

pids wrap on a busy machine (Linux's default pid_max is 32,768, and gzip's ``./configure``
alone starts about 3,900 processes), so a long build meets one of its own ended processes'
pids again. The end-to-end tests force that reuse for real: in a pid namespace of its own
(root), the build writes ``ns_last_pid`` so that its next process gets the pid of one that
ended and was reaped, under ``--trace strace`` and under the strace that ``--trace auto``
puts around a static program. The unit tests feed strace's lines in the orders it prints
them in when a child races its parent's ``clone``/``vfork`` result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recorder.model import Manifest
from recorder.strace_parser import StraceParser, TracedProcess, align_keys
from recorder.tape import open_tape
from tests.conftest import needs_strace, parse_strace, static_executable

needs_pid_namespace = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="forcing a pid's reuse takes root (ns_last_pid in a new pid namespace) and unshare",
)

PID_REUSE = """\
STEP=one sh -c 'echo $$ > pid1; echo first > a.txt'
n=$(cat pid1)
echo $((n - 1)) > /proc/sys/kernel/ns_last_pid
STEP=two sh -c 'echo $$ > pid2; cat a.txt > b.txt'
"""

# A static program (strace's alone to see: the interposer sees nothing under it) whose two
# forked children get the same pid; the second copies what the first wrote.
STATIC_REUSE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w"); fputs(text, f); fclose(f); }
int main(void) {
  pid_t a = fork();
  if (a == 0) { put("a.txt", "first\n"); _exit(0); }
  waitpid(a, NULL, 0);
  char n[32]; snprintf(n, sizeof n, "%d", (int)a - 1);
  put("/proc/sys/kernel/ns_last_pid", n);
  pid_t b = fork();
  if (b == 0) { char line[16] = ""; FILE *f = fopen("a.txt", "r"); fgets(line, sizeof line, f);
    fclose(f); put("b.txt", line); _exit(3); }
  int status; waitpid(b, &status, 0);
  snprintf(n, sizeof n, "%d\n", (int)a); put("pid1", n);
  snprintf(n, sizeof n, "%d\n", (int)b); put("pid2", n);
  return WEXITSTATUS(status) == 3 ? 0 : 1; }
"""


def record(ws: Path, tape: Path, trace: str, *argv: str) -> Manifest:
    """Record in a pid namespace of the recorder's own: strace must see the pids the build
    sees (a strace outside the namespace sees other pids, which were not reused)."""
    recorder = [sys.executable, "-m", "buildtape", "record", "-q", "-o", str(tape)]
    out = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", '"$@"; exit $?', "sh",
         *recorder, "--trace", trace, "--", *argv],
        cwd=ws, capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    assert (ws / "pid1").read_text() == (ws / "pid2").read_text(), (
        "the kernel did not reuse the pid: the test proves nothing"
    )
    with open_tape(tape) as t:
        return t.manifest


@needs_strace
@needs_pid_namespace
def test_a_reused_pid_is_two_processes_under_trace_strace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "build.sh").write_text(PID_REUSE)
    m = record(ws, tmp_path / "reuse.tape", "strace", "sh", "build.sh")
    first = int((ws / "pid1").read_text())
    shells = [p for p in m.processes if p.argv[:2] == ["sh", "-c"]]
    assert [p.argv[2].split(";")[0] for p in shells] == ["echo $$ > pid1", "echo $$ > pid2"]
    one, two = shells
    assert one.pid == two.pid == first
    assert one.id != two.id and one.parent_id == two.parent_id
    assert "a.txt" in one.writes and "a.txt" not in two.writes
    assert "b.txt" in two.writes and "b.txt" not in one.writes
    assert one.end_s is not None and one.end_s <= two.start_s
    assert one.exit_code == two.exit_code == 0
    cat = [p for p in m.processes if p.argv == ["cat", "a.txt"]]
    assert len(cat) == 1 and cat[0].parent_id == two.id and "a.txt" in cat[0].reads
    # Each keeps the environment the interposer saved for it: strace's keys and the
    # interposer's name the same process.
    assert (one.env or {}).get("STEP") == "one" and (two.env or {}).get("STEP") == "two"


@pytest.fixture
def static_reuse(tmp_path: Path) -> Path:
    return static_executable(tmp_path, "static-reuse", STATIC_REUSE)


@needs_strace
@needs_pid_namespace
@pytest.mark.parametrize("trace", ["auto", "strace"])
def test_a_reused_pid_under_a_static_program_is_two_processes(
    tmp_path: Path, static_reuse: Path, trace: str
) -> None:
    """Under ``--trace auto`` the static program's subtree is traced by a strace of its own
    (``recorder.straced``), whose log is folded into the interposer's records."""
    ws = tmp_path / "ws"
    ws.mkdir()
    m = record(ws, tmp_path / "static.tape", trace, str(static_reuse))
    first = int((ws / "pid1").read_text())
    runner = next(p for p in m.processes if p.exe == str(static_reuse) and "pid1" in p.writes)
    children = [p for p in m.processes if p.parent_id == runner.id]
    assert [p.pid for p in children] == [first, first]
    one, two = children
    assert one.writes == ["a.txt"] and one.reads == []
    assert two.reads == ["a.txt"] and two.writes == ["b.txt"]
    assert (one.exit_code, two.exit_code) == (0, 3)
    assert one.end_s is not None and one.end_s <= two.start_s
    if trace == "auto":  # strace traced its subtree: nothing under it went unseen
        assert not runner.static and not one.static and not two.static


def parse(trace: str, root: str = "/w") -> StraceParser:
    parsed: StraceParser = parse_strace(trace, root)
    return parsed


def by_argv(p: StraceParser) -> dict[str, list[TracedProcess]]:
    out: dict[str, list[TracedProcess]] = {}
    for proc in sorted(p.processes.values(), key=lambda q: q.start):
        out.setdefault(" ".join(proc.argv or []), []).append(proc)
    return out


REUSED_CHILD_FIRST = """\
100 1.000 execve("/usr/bin/make", ["make"], 0x1 /* 3 vars */) = 0
100 1.001 vfork( <unfinished ...>
101 1.002 execve("/usr/bin/cc", ["cc", "-c", "a.c"], 0x1 /* 3 vars */) = 0
101 1.003 openat(AT_FDCWD, "a.o", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
101 1.004 +++ exited with 0 +++
100 1.005 <... vfork resumed>) = 101
100 1.006 chdir("sub") = 0
100 1.007 vfork( <unfinished ...>
101 1.008 execve("/usr/bin/ld", ["ld", "a.o"], 0x1 /* 3 vars */) = 0
101 1.009 openat(AT_FDCWD, "a.o", O_RDONLY) = 3
101 1.010 openat(AT_FDCWD, "a.out", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
101 1.011 +++ exited with 1 +++
100 1.012 <... vfork resumed>) = 101
100 1.013 +++ exited with 0 +++
"""


def test_a_child_that_exits_before_its_vfork_returns_stays_one_process() -> None:
    """Both children's lines, even their exits, come before the vfork result that names
    them; only the second vfork, after make reaped the first, is another process."""
    p = parse(REUSED_CHILD_FIRST)
    procs = by_argv(p)
    (cc,), (ld,) = procs["cc -c a.c"], procs["ld a.o"]
    assert cc.recorded_pid == 101 and cc.pid != 101 and ld.pid == 101
    assert cc.parent_pid == ld.parent_pid == 100
    assert (list(cc.writes), list(cc.reads)) == (["/w/a.o"], [])
    assert (list(ld.reads), list(ld.writes)) == (["/w/sub/a.o"], ["/w/sub/a.out"])
    assert (cc.exit_code, cc.end, ld.exit_code, ld.start) == (0, 1.004, 1, 1.008)
    assert ld.exec_cwd == "/w/sub"
    assert len(p.processes) == 3


def test_a_reused_pid_seen_first_by_the_parents_clone_result() -> None:
    p = parse("""\
100 1.000 execve("/bin/sh", ["sh", "-c", "x"], 0x1 /* 3 vars */) = 0
100 1.001 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = 101
101 1.002 execve("/bin/true", ["true"], 0x1 /* 3 vars */) = 0
101 1.003 +++ exited with 0 +++
100 1.004 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = 101
101 1.005 openat(AT_FDCWD, "forked.txt", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
101 1.006 +++ exited with 2 +++
""")
    procs = by_argv(p)
    true, fork = procs["true"][0], procs["sh -c x"][1]
    assert true.recorded_pid == 101 and fork.pid == 101
    assert list(true.writes) == [] and list(fork.writes) == ["/w/forked.txt"]
    assert (true.exit_code, fork.exit_code) == (0, 2)


def test_a_reused_pid_whose_first_line_is_its_exit() -> None:
    # A forked subshell that exits at once: strace shows nothing of it but its exit, which
    # can come before the clone result.
    p = parse("""\
100 1.000 execve("/bin/sh", ["sh"], 0x1 /* 3 vars */) = 0
100 1.001 clone(child_stack=NULL, flags=SIGCHLD) = 101
101 1.002 +++ exited with 4 +++
100 1.003 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>
101 1.004 +++ exited with 5 +++
100 1.005 <... clone resumed>) = 101
""")
    kids = [q for q in p.processes.values() if q.parent_pid == 100]
    assert sorted((q.exit_code, q.recorded_pid) for q in kids) == [(4, 101), (5, None)]


def test_a_thread_id_reused_by_a_process_is_not_folded_into_the_old_thread_group() -> None:
    p = parse("""\
100 1.000 execve("/usr/bin/ld.gold", ["ld.gold"], 0x1 /* 3 vars */) = 0
100 1.001 clone(child_stack=0x7f, flags=CLONE_VM|CLONE_FS|CLONE_THREAD|CLONE_SIGHAND) = 101
101 1.002 openat(AT_FDCWD, "in.o", O_RDONLY) = 3
101 1.003 +++ exited with 0 +++
100 1.004 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = 101
101 1.005 execve("/bin/true", ["true"], 0x1 /* 3 vars */) = 0
101 1.006 openat(AT_FDCWD, "other.txt", O_RDONLY) = 3
101 1.007 +++ exited with 0 +++
100 1.008 +++ exited with 0 +++
""")
    procs = by_argv(p)
    (ld,), (true,) = procs["ld.gold"], procs["true"]
    assert list(ld.reads) == ["/w/in.o"] and list(true.reads) == ["/w/other.txt"]
    assert true.pid == 101 and true.parent_pid == 100 and ld.end == 1.008


def test_a_pid_reused_after_an_ended_process_that_was_never_a_thread_of_it() -> None:
    # The old process had ended: a thread that gets its pid is not that process (a stale
    # process under the same pid must not absorb the new thread's files, nor it theirs).
    p = parse("""\
100 1.000 execve("/usr/bin/make", ["make"], 0x1 /* 3 vars */) = 0
100 1.001 clone(child_stack=NULL, flags=SIGCHLD) = 101
101 1.002 execve("/bin/cat", ["cat", "x"], 0x1 /* 3 vars */) = 0
101 1.003 openat(AT_FDCWD, "x", O_RDONLY) = 3
101 1.004 +++ exited with 0 +++
100 1.005 clone(child_stack=0x7f, flags=CLONE_VM|CLONE_FS|CLONE_THREAD|CLONE_SIGHAND) = 101
101 1.006 openat(AT_FDCWD, "y", O_RDONLY) = 3
""")
    procs = by_argv(p)
    (cat,), (make,) = procs["cat x"], procs["make"]
    assert list(cat.reads) == ["/w/x"] and list(make.reads) == ["/w/y"]


def test_align_keys_gives_straces_processes_the_interposers_keys() -> None:
    """The interposer and strace each give an earlier process with a reused pid a key of
    their own; the tape's ids, environments and versions need one key for one process."""
    p = parse(REUSED_CHILD_FIRST)
    seen = {
        100: TracedProcess(pid=100, parent_pid=None, start=1.0005, cwd="/w"),
        -1: TracedProcess(pid=-1, parent_pid=100, start=0.5, cwd="/w", recorded_pid=101),
        -2: TracedProcess(pid=-2, parent_pid=100, start=1.0025, cwd="/w", recorded_pid=101),
        101: TracedProcess(pid=101, parent_pid=100, start=1.0085, cwd="/w/sub"),
    }
    seen[-1].end, seen[-2].end = 0.6, 1.0041  # -1: a process before strace began
    traced = list(p.processes.values())
    align_keys(traced, seen)
    keys = {" ".join(q.argv or []): q.pid for q in traced}
    assert keys == {"make": 100, "cc -c a.c": -2, "ld a.o": 101}
    assert {q.parent_pid for q in traced if q.pid != 100} == {100}


@needs_strace
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a pid namespace for the build takes root and unshare",
)
def test_a_build_in_a_pid_namespace_of_its_own_keeps_its_tree_under_trace_strace(
    tmp_path: Path,
) -> None:
    """strace, outside the build's pid namespace, prefixes lines with the pids it knows, while
    a clone result inside gives the namespace's: they must still join."""
    ws = tmp_path / "ws"
    ws.mkdir()
    script = "sh -c 'echo in > inner.txt'; cat inner.txt > outer.txt"
    out = subprocess.run(
        [sys.executable, "-m", "buildtape", "record", "-q", "-o", str(tmp_path / "ns.tape"),
         "--trace", "strace", "--", "unshare", "--pid", "--fork", "sh", "-c", script],
        cwd=ws, capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    with open_tape(tmp_path / "ns.tape") as t:
        m = t.manifest
    by_id = {p.id: p for p in m.processes}
    outer = next(p for p in m.processes if p.argv == ["sh", "-c", script])
    inner = next(p for p in m.processes if p.argv == ["sh", "-c", "echo in > inner.txt"])
    cat = next(p for p in m.processes if p.argv == ["cat", "inner.txt"])
    assert inner.parent_id == outer.id and cat.parent_id == outer.id
    assert "inner.txt" in inner.writes and "inner.txt" in cat.reads
    assert by_id[outer.parent_id or 0].argv[0] == "unshare"
    # No process made up from a namespace pid that no line was prefixed with.
    assert all(p.end_s is not None for p in m.processes), [p.argv for p in m.processes]


def test_a_clone_result_in_another_pid_namespace_names_the_child_by_straces_pid() -> None:
    p = parse("""\
100 1.000 execve("/bin/sh", ["sh", "-c", "x"], 0x1 /* 3 vars */) = 0
100 1.001 vfork( <unfinished ...>
3062 1.002 execve("/bin/cat", ["cat", "in"], 0x1 /* 3 vars */) = 0
100 1.003 <... vfork resumed>) = 2 /* 3062 in strace's PID NS */
3062 1.004 openat(AT_FDCWD, "in", O_RDONLY) = 3
3062 1.005 +++ exited with 0 +++
100 1.006 +++ exited with 0 +++
""")
    assert sorted(p.processes) == [100, 3062]
    assert p.processes[3062].parent_pid == 100 and list(p.processes[3062].reads) == ["/w/in"]


def test_align_keys_keeps_a_process_only_strace_saw_apart_from_an_earlier_one_with_its_pid() -> (
    None
):
    """A static program's fork child (only strace sees it) that got the pid of a process the
    interposer saw end earlier is another process: folding the two would merge them."""
    earlier = TracedProcess(pid=101, parent_pid=100, start=1.0, cwd="/w", argv=["true"])
    earlier.end = 1.1
    child = TracedProcess(pid=101, parent_pid=200, start=2.0, cwd="/w", argv=["static"])
    child.end = 2.5
    runner = TracedProcess(pid=200, parent_pid=None, start=1.9, cwd="/w", argv=["static"])
    traced = [runner, child]
    align_keys(traced, {101: earlier})
    assert runner.pid == 200 and child.parent_pid == 200
    assert child.pid < 0 and child.recorded_pid == 101  # its own key; the tape keeps its pid
