"""The cwd of each traced process, whatever order strace prints its parent's and its own lines in.

strace -f prints each call when it finishes, so a child's ``execve`` (and more) can come
before the ``vfork``/``clone`` result that names its parent. The unit tests feed literal
lines in that order; the end-to-end test records a real parallel make whose recipes
``cd`` into subdirectories, many times (under strace, and a few under the default, the
interposer), and checks every step's cwd.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.strace_parser import StraceParser
from recorder.tape import open_tape
from tests.conftest import buildtape, needs_strace, parse_strace


def parse(trace: str, root: str = "/w") -> StraceParser:
    parsed: StraceParser = parse_strace(trace, root)
    return parsed


def test_child_exec_before_vfork_result_gets_the_parents_cwd_then() -> None:
    p = parse("""\
100 1.000 execve("/usr/bin/make", ["make"], 0x1 /* 3 vars */) = 0
100 1.001 chdir("sub") = 0
100 1.002 vfork( <unfinished ...>
101 1.003 execve("/usr/bin/cc", ["cc", "-c", "a.c"], 0x1 /* 3 vars */) = 0
101 1.004 openat(AT_FDCWD, "a.c", O_RDONLY) = 3
101 1.005 openat(AT_FDCWD, "../inc/a.h", O_RDONLY) = 3
101 1.006 openat(AT_FDCWD, "a.o", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4
100 1.007 <... vfork resumed>) = 101
100 1.008 chdir("/elsewhere") = 0
101 1.009 +++ exited with 0 +++
""")
    cc = p.processes[101]
    assert cc.parent_pid == 100
    assert cc.exec_cwd == "/w/sub" and cc.cwd == "/w/sub"
    assert list(cc.reads) == ["/w/sub/a.c", "/w/inc/a.h"]
    assert list(cc.writes) == ["/w/sub/a.o"]
    # The parent's later chdir does not move a child that already started.
    assert p.processes[100].cwd == "/elsewhere"


def test_grandchild_before_both_clone_results_nests_the_cds() -> None:
    # make (in /w/sub) -> sh -c "cd d && cc -c x.c" -> cc, with both clone results late.
    p = parse("""\
100 1.000 execve("/usr/bin/make", ["make"], 0x1 /* 3 vars */) = 0
100 1.001 chdir("/w/sub") = 0
100 1.002 vfork( <unfinished ...>
101 1.003 execve("/bin/sh", ["sh", "-c", "cd d && cc -c x.c"], 0x1 /* 3 vars */) = 0
101 1.004 chdir("d") = 0
101 1.005 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>
102 1.006 execve("/usr/bin/cc", ["cc", "-c", "x.c"], 0x1 /* 3 vars */ <unfinished ...>
102 1.007 <... execve resumed>) = 0
102 1.008 openat(AT_FDCWD, "x.c", O_RDONLY) = 3
101 1.009 <... clone resumed>, child_tidptr=0x7f) = 102
100 1.010 <... vfork resumed>) = 101
""")
    sh, cc = p.processes[101], p.processes[102]
    assert (sh.parent_pid, sh.exec_cwd, sh.cwd) == (100, "/w/sub", "/w/sub/d")
    assert (cc.parent_pid, cc.exec_cwd, cc.cwd) == (101, "/w/sub/d", "/w/sub/d")
    assert list(cc.reads) == ["/w/sub/d/x.c"]


def test_posix_spawn_clone3_and_a_fork_that_cds_before_exec() -> None:
    # A subshell "(cd lib && ./gen)" forks, chdirs in the fork, then execs; clone3 is
    # what glibc's posix_spawn uses. Both results arrive after the children's lines.
    p = parse("""\
100 1.000 execve("/bin/sh", ["sh", "-c", "(cd lib && ./gen)"], 0x1 /* 3 vars */) = 0
100 1.001 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>
101 1.002 chdir("lib") = 0
101 1.003 clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f, stack_size=0x9000}, 88 <unfinished ...>
102 1.004 execve("./gen", ["./gen"], 0x1 /* 3 vars */) = 0
101 1.005 <... clone3 resumed>) = 102
100 1.006 <... clone resumed>, child_tidptr=0x7f) = 101
""")
    fork, gen = p.processes[101], p.processes[102]
    assert fork.argv == ["sh", "-c", "(cd lib && ./gen)"] and fork.exec_cwd == "/w"
    assert fork.cwd == "/w/lib"
    assert (gen.parent_pid, gen.exe, gen.exec_cwd) == (101, "/w/lib/gen", "/w/lib")


def test_early_thread_is_folded_with_paths_under_its_process() -> None:
    p = parse("""\
100 1.000 execve("/usr/bin/ld", ["ld"], 0x1 /* 3 vars */) = 0
100 1.001 chdir("out") = 0
100 1.002 clone(child_stack=0x7f, flags=CLONE_VM|CLONE_FS|CLONE_THREAD|CLONE_SIGHAND <unfinished ...>
101 1.003 openat(AT_FDCWD, "part.o", O_RDONLY) = 3
100 1.004 <... clone resumed>) = 101
""")
    assert list(p.processes) == [100]
    assert list(p.processes[100].reads) == ["/w/out/part.o"]


def test_a_process_whose_parent_never_shows_starts_at_the_root_cwd() -> None:
    p = parse("""\
100 1.000 execve("/usr/bin/make", ["make"], 0x1 /* 3 vars */) = 0
101 1.001 execve("/usr/bin/cc", ["cc"], 0x1 /* 3 vars */) = 0
101 1.002 openat(AT_FDCWD, "a.c", O_RDONLY) = 3
""")
    cc = p.processes[101]
    assert (cc.exec_cwd, list(cc.reads)) == ("/w", ["/w/a.c"])
    # Reading the tree early does not settle it: a late clone result still places it.
    p.feed('100 1.003 chdir("sub") = 0')
    p.feed("100 1.004 vfork() = 101")
    assert p.processes[101].exec_cwd == "/w/sub"


DIRS = [f"d{i}" for i in range(8)]


def write_parallel_project(ws: Path) -> None:
    """Recipes that cd into their own subdirectory (some two levels deep), run in parallel."""
    rules = []
    for name in DIRS:
        deep = ws / name / "deep"
        deep.mkdir(parents=True)
        (ws / name / f"in-{name}.txt").write_text(f"{name}\n")
        (deep / f"src-{name}.c").write_text(f"int {name}(void) {{ return 1; }}\n")
        rules.append(
            f"{name}/stamp:\n"
            f"\tcd {name} && cat in-{name}.txt > out-{name}.txt && "
            f"cd deep && cc -c src-{name}.c -o obj-{name}.o && touch ../stamp\n"
        )
    stamps = " ".join(f"{name}/stamp" for name in DIRS)
    (ws / "Makefile").write_text(f"all: {stamps}\n\n" + "\n".join(rules))


@pytest.mark.parametrize(
    ("trace", "run"),
    [pytest.param("strace", i, marks=needs_strace) for i in range(10)]
    + [("auto", i) for i in range(3)],  # the default: process events from the interposer
)
def test_parallel_make_steps_have_the_cwd_they_ran_in(tmp_path: Path, trace: str, run: int) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    write_parallel_project(ws)
    tape = tmp_path / "p.tape"
    rec = buildtape(
        "record", "--trace", trace, "--stacks", "none", "-o", tape, "--", "make", "-j4",
        cwd=ws,
    )  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    with open_tape(tape) as t:
        processes = t.manifest.processes
    checked = 0
    for proc in processes:
        name = Path(proc.argv[0]).name if proc.argv else ""
        target = next((a for a in proc.argv[1:] if a.startswith(("in-", "src-"))), None)
        if name not in ("cat", "cc") or target is None:
            continue
        d = target.split("-", 1)[1].split(".")[0]
        expected = ws / d if name == "cat" else ws / d / "deep"
        assert proc.cwd == str(expected), f"{proc.argv} recorded in {proc.cwd}"
        checked += 1
    assert checked == 2 * len(DIRS)
    # The make and the shells it started ran at the top; each shell was in its dir by the end.
    make = next(p for p in processes if p.parent_id is None)
    assert make.cwd == str(ws)


def test_a_subshell_that_forks_before_its_own_clone_result_gives_its_children_its_program() -> None:
    """Seen on gzip's configure under --trace strace: a forked subshell's own fork came
    before configure's clone result, so its child had no argv, and the tape a step with none."""
    p = parse("""\
100 1.000 execve("/bin/bash", ["/bin/bash", "./configure"], 0x1 /* 3 vars */) = 0
100 1.001 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>
101 1.002 clone(child_stack=NULL, flags=SIGCHLD) = 102
102 1.003 openat(AT_FDCWD, "conftest.out", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
102 1.004 +++ exited with 0 +++
101 1.005 +++ exited with 0 +++
100 1.006 <... clone resumed>) = 101
""")
    sub, grandchild = p.processes[101], p.processes[102]
    assert sub.argv == grandchild.argv == ["/bin/bash", "./configure"]
    assert grandchild.exe == "/bin/bash" and grandchild.parent_pid == 101
    assert list(grandchild.writes) == ["/w/conftest.out"]


def test_paths_relative_to_a_directory_descriptor_resolve_through_the_open_that_made_it() -> None:
    """coreutils' cp, install and mv open the target directory, then the file relative to
    it; a fork keeps its parent's descriptors, an exec closes the close-on-exec ones."""
    p = parse("""\
100 1.000 execve("/bin/sh", ["sh"], 0x1 /* 3 vars */) = 0
100 1.001 openat(AT_FDCWD, "out", O_RDONLY|O_DIRECTORY) = 5
100 1.002 openat(AT_FDCWD, "tmp", O_RDONLY|O_DIRECTORY|O_CLOEXEC) = 6
100 1.003 clone(child_stack=NULL, flags=SIGCHLD) = 101
101 1.004 execve("/usr/bin/cp", ["cp", "a", "sub dir/"], 0x1 /* 3 vars */) = 0
101 1.005 openat(AT_FDCWD, "sub dir/", O_RDONLY|O_PATH|O_DIRECTORY) = 3
101 1.006 openat(AT_FDCWD, "a", O_RDONLY) = 4
101 1.007 openat(3, "a", O_WRONLY|O_CREAT|O_EXCL, 0644) = 7
101 1.008 openat(5, "kept.txt", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 8
101 1.009 openat(6, "closed.txt", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 9
101 1.010 renameat(3, "a", 5, "b") = 0
101 1.011 +++ exited with 0 +++
""")
    cp = p.processes[101]
    assert list(cp.reads) == ["/w/a"]
    assert list(cp.writes) == ["/w/sub dir/a", "/w/out/kept.txt", "/w/out/b"]
    assert list(cp.deleted) == ["/w/sub dir/a"]
    assert list(p.processes[100].reads) == []  # a directory handle is not a read


@needs_strace
def test_cp_into_a_directory_is_seen_under_trace_strace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "sub dir").mkdir(parents=True)
    (ws / "a.txt").write_text("a\n")
    tape = tmp_path / "cp.tape"
    out = buildtape("record", "-q", "-o", tape, "--trace", "strace", "--",
                    "cp", "a.txt", "sub dir/", cwd=ws)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    with open_tape(tape) as t:
        cp = next(p for p in t.manifest.processes if p.argv[0] == "cp")
    assert cp.writes == ["sub dir/a.txt"] and "a.txt" in cp.reads
    # The interposer's own files (its library, its log) are the recorder's, not the build's.
    assert not [r for r in cp.reads if "btshim" in r or "buildtape-" in r]
