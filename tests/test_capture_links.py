"""What the interposer sees that libc's open family does not show: names made by link(2)
and symlink(2), temporaries that mkstemp(3) opened, and shared objects the dynamic loader
maps from the workspace.

Every test runs a real build (make, gcc, coreutils) under the real CLI and reads the tape.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import buildtape, needs_strace
from tests.test_capture import OLD, manifest, record

LINKS = """\
all: libfoo.so hard.c copy.c swapped
libfoo.so.1: foo.c
\tcc -shared -fPIC -Wl,-soname,libfoo.so.1 -o $@ foo.c
libfoo.so: libfoo.so.1
\tln -s libfoo.so.1 libfoo.so
hard.c: foo.c
\tln foo.c hard.c
copy.c: foo.c
\tcp -l foo.c copy.c
swapped: libfoo.so.1
\tln -sf libfoo.so.1 swapped
"""


def by_argv(m: dict[str, Any]) -> dict[str, tuple[dict[str, Any], list[str], list[str]]]:
    """Each process by its argv joined, with its workspace reads and writes."""
    paths = m["paths"]
    out = {}
    for p in m["processes"]:
        reads = [paths[i] for i in p["reads"] if not paths[i].startswith("/")]
        writes = [paths[i] for i in p["writes"] if not paths[i].startswith("/")]
        out[" ".join(p["argv"])] = (p, reads, writes)
    return out


@pytest.mark.parametrize(
    "trace",
    [(), pytest.param(("--trace", "strace", "--file-events", "strace"), marks=needs_strace)],
    ids=["interposer", "strace"],
)
def test_names_made_by_link_and_symlink_are_writes_of_their_step(
    tmp_path: Path, trace: tuple[str, ...]
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Makefile").write_text(LINKS)
    (ws / "foo.c").write_text("int foo(void) { return 42; }\n")
    (ws / "swapped").write_bytes(b"a regular file before the build\n")
    for name in ("Makefile", "foo.c", "swapped"):
        os.utime(ws / name, (OLD, OLD))
    tape = tmp_path / "links.tape"
    record(ws, tape, "make", extra=trace)
    m = manifest(tape)
    procs = by_argv(m)
    _, _, writes = procs["ln -s libfoo.so.1 libfoo.so"]
    assert writes == ["libfoo.so"]
    _, reads, writes = procs["ln foo.c hard.c"]
    assert (reads, writes) == (["foo.c"], ["hard.c"])
    _, reads, writes = procs["cp -l foo.c copy.c"]
    assert (reads, writes) == (["foo.c"], ["copy.c"])
    # What the interposer keeps in its save directory is no event of the build.
    assert not any("/saved/" in m["paths"][i] for p in m["processes"] for i in p["writes"])
    # ln -sf makes the link under a temporary name and renames it over the old file.
    _, _, writes = procs["ln -sf libfoo.so.1 swapped"]
    assert "swapped" in writes
    outputs = {o["path"]: o for o in m["outputs"]}
    assert outputs["libfoo.so"]["link"] == "libfoo.so.1"
    assert outputs["libfoo.so"]["change"] == "created"
    assert (outputs["swapped"]["link"], outputs["swapped"]["change"]) == ("libfoo.so.1", "modified")
    # The file the link replaced keeps its pre-build bytes.
    before = next(e for e in m["inputs"] if e["path"] == "swapped")
    old = hashlib.sha256(b"a regular file before the build\n").hexdigest()
    assert before["sha256"] == old and before.get("stored")

    out = buildtape("replay", tape)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    assert "reproduced: 5 same" in out.stdout.decode()
    # One step alone: the link it made is what it is compared on.
    for argv in ("ln -s libfoo.so.1 libfoo.so", "ln -sf libfoo.so.1 swapped", "cp -l foo.c copy.c"):
        step = procs[argv][0]
        out = buildtape("replay", tape, "--step", str(step["id"]))
        text = out.stdout.decode()
        assert out.returncode == 0, text + out.stderr.decode()
        assert "reproduced: 1 same" in text, (argv, text)


def test_a_link_whose_target_differs_on_replay_is_a_difference(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Makefile").write_text('current:\n\tln -s "v$$(date +%s%N)" current\n')
    tape = tmp_path / "nd.tape"
    record(ws, tape, "make")
    out = buildtape("replay", tape)
    text = out.stdout.decode()
    assert out.returncode == 1, text + out.stderr.decode()
    assert "different: current" in text


LOADED = {
    "foo.c": "int foo(void) { return 42; }\n",
    "plug.c": "int plugged(void) { return 7; }\n",
    "prog.c": '#include <stdio.h>\nint foo(void);\nint main(void) { printf("%d\\n", foo()); }\n',
    "loader.c": """\
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) { fprintf(stderr, "%s\\n", dlerror()); return 1; }
    printf("%d\\n", ((int (*)(void))dlsym(h, "plugged"))());
    if (argc > 2) dlclose(h);
    return 0;
}
""",
    "Makefile": """\
all: prog loader plug.so
libfoo.so: foo.c
\tcc -shared -fPIC -o $@ foo.c
plug.so.1: plug.c
\tcc -shared -fPIC -o $@ plug.c
plug.so: plug.so.1
\tln -s plug.so.1 plug.so
prog: prog.c libfoo.so
\tcc -o $@ prog.c -L. -lfoo -Wl,-rpath,'$$ORIGIN'
loader: loader.c
\tcc -o $@ loader.c
check: all
\t./prog > rpath.out
\tLD_LIBRARY_PATH=. ./prog > ldpath.out
\t./loader ./plug.so > kept.out
\t./loader ./plug.so close > closed.out
.PHONY: check
""",
}


def test_shared_objects_the_loader_maps_from_the_workspace_are_reads(tmp_path: Path) -> None:
    """ld.so maps a program's libraries with its own system calls: the interposer reads
    the loader's list (at start, before dlclose, at exit) and logs the workspace ones."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for name, text in LOADED.items():
        (ws / name).write_text(text)
    tape = tmp_path / "loaded.tape"
    record(ws, tape, "make", "check")
    m = manifest(tape)
    paths = m["paths"]
    runs = {}
    for p in m["processes"]:
        if p["argv"][0] in ("./prog", "./loader"):
            runs.setdefault(" ".join(p["argv"]), []).append(sorted(paths[i] for i in p["reads"]))
    # rpath $ORIGIN and LD_LIBRARY_PATH=. (a relative name in the loader's list); nothing
    # outside the workspace (libc) is logged.
    assert runs["./prog"] == [["libfoo.so"], ["libfoo.so"]]
    # dlopen, seen at exit, and before a dlclose; through the link, the file it names too.
    assert runs["./loader ./plug.so"] == [["plug.so", "plug.so.1"]]
    assert runs["./loader ./plug.so close"] == [["plug.so", "plug.so.1"]]
    # A step alone gets what it loads: plug.so matches no lib*.so pattern to guess by.
    step = next(p for p in m["processes"] if p["argv"][-1] == "./loader ./plug.so > kept.out")
    out = buildtape("replay", tape, "--step", str(step["id"]))
    text = out.stdout.decode()
    assert out.returncode == 0, text + out.stderr.decode()
    assert "reproduced: 1 same" in text


TEMPS = {
    "Makefile": """\
all: lib.a
\t./temps
lib.a: a.o temps
\tar rc lib.a a.o
a.o: a.c
\t$(CC) -c a.c
temps: temps.c
\t$(CC) -o temps temps.c
""",
    "a.c": "int a(void) { return 1; }\n",
    "temps.c": r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    char a[] = "out.XXXXXX", b[] = "out.XXXXXX.txt", d[] = "dir.XXXXXX";
    int fa = mkostemp(a, 0), fb = mkstemps(b, 4);
    if (fa < 0 || fb < 0 || !mkdtemp(d))
        return 1;
    if (write(fa, "a\n", 2) != 2 || write(fb, "b\n", 2) != 2)
        return 1;
    printf("%s %s %s\n", a, b, d);
    return 0;
}
""",
}


@pytest.mark.parametrize(
    "trace",
    [(), pytest.param(("--trace", "strace", "--file-events", "strace"), marks=needs_strace)],
    ids=["interposer", "strace"],
)
def test_mkstemp_temporaries_are_writes_of_their_process(
    tmp_path: Path, trace: tuple[str, ...]
) -> None:
    """glibc's mkstemp opens through an internal call: the interposer wraps the family."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for name, text in TEMPS.items():
        (ws / name).write_text(text)
    tape = tmp_path / "temps.tape"
    record(ws, tape, "make", extra=trace)
    m = manifest(tape)
    made = sorted(o["path"] for o in m["outputs"] if o["path"].startswith("out."))
    assert len(made) == 2, made
    dirs = [d["path"] for d in m["directories"] if d["path"].startswith("dir.")]
    assert len(dirs) == 1, dirs
    procs = by_argv(m)
    _, _, writes = procs["./temps"]
    assert sorted(writes) == made
    assert [m["paths"][i] for i in procs["./temps"][0].get("made_dirs", [])] == dirs
    # ar writes the archive to a temporary of its own (stXXXXXX), then renames it.
    _, _, writes = procs["ar rc lib.a a.o"]
    assert "lib.a" in writes
    temps = [w for w in writes if w != "lib.a"]
    assert len(temps) == 1 and temps[0].startswith("st") and len(temps[0]) == 8, writes
