"""A run's whole world: what must exist, as it was, when the build (or one step) started.

For the whole build that is the pre-build workspace: every recorded file with its content
and mtime (files the build never touched, listed without content, come back as
placeholders of the recorded size, mode and mtime, which is all ``make`` looks at), and
every recorded directory with its mtime.

For one step it is what that step saw: the files its subtree read or executed, each as it
was when the step started (pre-build content unless an earlier step wrote it, then that
step's output), the directories it wrote into, the intermediates outside the workspace that
earlier steps wrote for it (gcc's ``/tmp/cc*.s``), and its own environment and cwd. A file
the step writes is present at the start only if it was present in the recording: an
``ar cq`` whose archive had just been removed starts without it, and does not append to it.
"""

from __future__ import annotations

import posixpath
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from recorder.model import (
    DirEntry,
    FileEntry,
    Intermediate,
    Manifest,
    Process,
    Version,
    process_environment,
)
from replay.errors import WorldError

_SHARED_LIBRARY = re.compile(r"lib[^/]*\.so(\.\d+)*")


@dataclass
class World:
    # Files with content (or links) to restore, as they were when the run started.
    files: list[FileEntry]
    # Listed-only files: restored with their recorded size, mode and mtime, no content.
    placeholders: list[FileEntry]
    # Directories with their recorded mode and mtime.
    dirs: list[DirEntry]
    # Directories the run needs whose mtime was not recorded (created by the build).
    needed_dirs: list[str]
    intermediates: list[Intermediate]
    argv: list[str]
    # The cwd relative to the workspace (``.`` for the root), or an absolute path outside
    # it (cargo compiles a dependency in its registry directory): only a namespace
    # sandbox, where the rest of the host is there read-only, can run a step there.
    cwd: str
    # The environment recorded for this run (redacted values still redacted).
    env: dict[str, str]
    expected: list[FileEntry]
    expected_status: int
    step: Process | None = None
    # Outputs of the step that did not exist when it started, so are not restored.
    absent: list[str] = field(default_factory=list)
    # Files the step read that an earlier step wrote and the build later deleted: the
    # tape has no content for them.
    unavailable: list[str] = field(default_factory=list)
    # Outputs of the step that another process changed afterwards (path, its step id):
    # the tape holds only their final content, not what this step wrote, so they are not
    # among ``expected``.
    rewritten_later: list[tuple[str, int]] = field(default_factory=list)
    # Files the step started with that an earlier step wrote and this step (or a later
    # one) changed again: the tape holds only their final content, which is what they are
    # restored with, not what the step saw.
    stale: list[str] = field(default_factory=list)
    # Files the step read or ran that the build made without any recorded process writing
    # them (cargo hard-links its build scripts): restored as the build left them.
    unseen: list[str] = field(default_factory=list)
    # The rest of the workspace as the build found it, for `replay --step` (a reproducer
    # keeps to what the step opened): pre-build files that no process had written or
    # removed when the step started and that it did not open, below its cwd or beside what
    # it opened, as placeholders of their size (links as links; content the step never
    # read would only cost time to restore: sqlite's 108 MB tree), and their recorded
    # directories. A step that finds files by listing a directory (a glob, setuptools'
    # MANIFEST.in and license files) finds them.
    rest: list[FileEntry] = field(default_factory=list)
    rest_placeholders: list[FileEntry] = field(default_factory=list)
    rest_dirs: list[DirEntry] = field(default_factory=list)

    def cwd_outside(self) -> bool:
        return self.cwd.startswith("/")


def subtree(m: Manifest, step_id: int) -> list[Process]:
    """The step and every process it started, directly or not."""
    children: dict[int, list[Process]] = {}
    for p in m.processes:
        if p.parent_id is not None:
            children.setdefault(p.parent_id, []).append(p)
    by_id = {p.id: p for p in m.processes}
    if step_id not in by_id:
        raise WorldError(f"the tape has no step {step_id}; `buildtape ps TAPE` lists them")
    out, todo, seen = [], [by_id[step_id]], set()
    while todo:
        p = todo.pop()
        if p.id in seen:
            continue
        seen.add(p.id)
        out.append(p)
        todo.extend(children.get(p.id, []))
    return sorted(out, key=lambda p: p.id)


def ancestors(m: Manifest, step: Process) -> set[int]:
    by_id = {p.id: p for p in m.processes}
    out: set[int] = set()
    node = by_id.get(step.parent_id) if step.parent_id is not None else None
    while node is not None and node.id not in out:
        out.add(node.id)
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    return out


def relative_to_workspace(m: Manifest, path: str) -> str | None:
    """``path`` relative to the recorded workspace, or None when it lies outside."""
    if not path.startswith("/"):
        return path
    rel = posixpath.relpath(posixpath.normpath(path), m.workspace)
    return None if rel == "." or rel.startswith("../") or rel == ".." else rel


def step_cwd(m: Manifest, step: Process) -> str:
    """The step's cwd relative to the workspace, or its absolute path when it lies outside
    (a dependency compiled in its registry directory)."""
    if step.cwd in ("", "?") or not step.cwd.startswith("/"):
        raise WorldError(f"step {step.id} has no recorded cwd")
    rel = posixpath.relpath(posixpath.normpath(step.cwd), m.workspace)
    return posixpath.normpath(step.cwd) if rel == ".." or rel.startswith("../") else rel


def shell_status(exit_code: int | None, signal_name: str | None) -> int:
    """How a shell reports an outcome: the exit code, or 128+N for death by signal N."""
    if exit_code is not None:
        return exit_code
    try:
        return 128 + int(signal.Signals[signal_name or ""])
    except KeyError:
        return 128


def whole_world(m: Manifest) -> World:
    files = [e for e in m.inputs if e.blob is not None or e.link is not None or e.sha256]
    listed = [e for e in m.inputs if e.sha256 is None and e.blob is None and e.link is None]
    return World(
        files=files,
        placeholders=listed,
        dirs=[d for d in m.directories if d.change != "created"],
        needed_dirs=[],
        intermediates=[],
        argv=list(m.argv),
        cwd=m.cwd_in_workspace,
        env=dict(m.environment.vars),
        expected=list(m.outputs),
        expected_status=shell_status(m.exit_code, m.signal),
    )


def _state_at(m: Manifest, procs: list[Process], start: float, skip: set[int]) -> dict[str, bool]:
    """For paths written or deleted before ``start`` by other processes: present or not."""
    state: dict[str, bool] = {}
    for p in sorted(m.processes, key=lambda p: (p.start_s, p.id)):
        if p.id in skip or p.start_s >= start:
            continue
        for path in p.deleted:
            state[path] = False
        for path in p.writes:
            state[path] = True
    return state


def step_world(m: Manifest, step_id: int) -> World:
    procs = subtree(m, step_id)
    step = next(p for p in procs if p.id == step_id)
    if not step.argv:
        raise WorldError(f"step {step.id} has no recorded argv (it was not traced)")
    if step.forked and step.parent_id is not None:
        raise WorldError(
            f"step {step.id} is a fork of step {step.parent_id} that ran no program of its own "
            f"(a subshell); replay step {step.parent_id} instead"
        )
    cwd = step_cwd(m, step)
    ids = {p.id for p in procs}
    start = min(p.start_s for p in procs)
    # Processes whose writes may have made a directory before the step started: earlier
    # ones outside its subtree, and its ancestors (theirs cannot be put before or after).
    above_or_before = {
        p.id for p in m.processes if p.id not in ids and p.start_s < start
    } | ancestors(m, step)
    earlier = _state_at(m, procs, start, ids | ancestors(m, step))
    before = {e.path: e for e in m.inputs}
    after = {e.path: e for e in m.outputs if e.change != "deleted"}
    gone = {e.path for e in m.outputs if e.change == "deleted"}

    def final(path: str) -> FileEntry | None:
        """The file after the build: an output, or (written, but to the same content)
        the pre-build file the tape lists among the inputs only."""
        if path in after:
            return after[path]
        return None if path in gone else before.get(path)

    by_id = {p.id: p for p in m.processes}
    versions: dict[str, list[Version]] = {}
    for v in m.versions:
        versions.setdefault(v.path, []).append(v)

    def as_left(
        path: str, wrote: Callable[[int], bool], replaced: Callable[[int], bool]
    ) -> FileEntry | None:
        """The last kept version of ``path`` that a process ``wrote`` and one ``replaced``."""
        found = [
            v for v in versions.get(path, []) if wrote(v.written_by) and replaced(v.replaced_by)
        ]
        if not found:
            return None
        v = found[-1]
        return FileEntry(v.path, v.mode, v.size, v.sha256, v.blob, None, None, None)

    def started_before(pid: int) -> bool:
        return pid not in ids and pid in by_id and by_id[pid].start_s < start

    def not_before(pid: int) -> bool:
        return pid in ids or (pid in by_id and by_id[pid].start_s >= start)

    written_by_any = {w for p in m.processes for w in p.writes}
    started_ns = _wall_ns(m.started_at, start)

    def at_start(path: str) -> FileEntry | None:
        """The file as it was when the step started, or None if it did not exist."""
        if path not in earlier and path not in before and path not in written_by_any:
            # Made by the build without a recorded write (a hard link: cargo's
            # build-script-build; a symbolic one: libtool's `ln -s libx.so.0.8.6
            # libx.so`): its final content is the best account of it there is, but only
            # its mtime says when it appeared, and one made after the step started (by the
            # step itself, or later) was not there for it.
            entry = final(path) if path in needed else None
            if entry is not None and entry.mtime_ns is not None and entry.mtime_ns > started_ns:
                return None
            return entry
        if path in earlier:
            if not earlier[path]:
                return None
            # An earlier step wrote it and this one or a later one replaced it: the tape
            # keeps it as that earlier step left it (format 1.2).
            return as_left(path, started_before, not_before) or final(path)
        return before.get(path)

    needed: set[str] = set()
    for p in procs:
        needed.update(r for r in p.reads if not r.startswith("/"))
        exe = relative_to_workspace(m, p.exe) if p.exe else None
        if exe is not None:
            needed.add(exe)
    writes = {w for p in procs for w in p.writes if not w.startswith("/")}
    if any(p.exe and relative_to_workspace(m, p.exe) is not None for p in procs):
        # A program of the build loads the build's shared libraries (libpng's tests: build/
        # libpng16d.so.16 through the rpath), and the dynamic loader opens them with its
        # own system calls, which the preload interposer does not see: every workspace
        # shared library there at the start comes along.
        known = {e.path for e in m.inputs} | set(after) | {w for p in m.processes for w in p.writes}
        libraries = {
            path
            for path in known
            if not path.startswith("/")
            and path not in writes
            and path not in needed
            and _SHARED_LIBRARY.fullmatch(posixpath.basename(path))
        }
        needed |= libraries
        needed -= {path for path in libraries if at_start(path) is None}
    files, listed, absent, unavailable = [], [], [], []
    for path in sorted(needed | writes):
        entry = at_start(path)
        if entry is None:
            if earlier.get(path) and path in needed:  # an earlier step wrote it; now gone
                unavailable.append(path)
            elif path in writes:
                absent.append(path)
            continue
        if entry.sha256 is None and entry.blob is None and entry.link is None:
            listed.append(entry)
        else:
            files.append(entry)
    unseen = sorted(
        e.path for e in files + listed if e.path not in before and e.path not in written_by_any
    )
    dirs_needed = {posixpath.dirname(w) for w in writes}
    if not cwd.startswith("/"):
        dirs_needed.add(cwd)
    dirs_needed |= {posixpath.dirname(e.path) for e in files + listed}
    all_parents = set()
    for d in dirs_needed:
        while d not in ("", "."):
            all_parents.add(d)
            d = posixpath.dirname(d)
    recorded = {d.path: d for d in m.directories if d.change != "created"}
    all_parents -= _made_by_the_step(m, all_parents, procs, above_or_before, files + listed, cwd)
    inters = [i for i in m.intermediates if ids & set(i.read_by) and not set(i.written_by) <= ids]
    above = ancestors(m, step)
    mine: dict[str, FileEntry] = {}
    for path in writes:
        left = as_left(path, lambda pid: pid in ids, lambda pid: pid not in ids)
        if left is not None:
            mine[path] = left  # what this step wrote, before a later step replaced it
    later = {
        path: by
        for path, by in _rewritten_later(m, ids, above, start, writes).items()
        if path not in mine
    }
    kept = sorted(w for w in writes if w not in later)
    rewritten = writes | set(_rewritten_later(m, ids, above, start, needed))
    stale = sorted(
        p
        for p in needed | writes
        if earlier.get(p)
        and p in rewritten
        and p not in absent
        and as_left(p, started_before, not_before) is None
    )
    expected = [
        e
        for e in (mine.get(w) or final(w) for w in kept)
        if e is not None and (e.sha256 or e.link is not None)
    ]
    # Only where the step could have listed: below each of its processes' cwds (setuptools
    # walks test/ for MANIFEST.in's recursive-include) and in the directories of what it
    # read, ran or wrote; a CMake step in build/ does not get all the sources restored.
    worked_in = {posixpath.dirname(path) for path in needed | writes}
    below: set[str] = set()
    for p in procs:
        if p.cwd.startswith("/"):
            rel = posixpath.relpath(posixpath.normpath(p.cwd), m.workspace)
            if rel != ".." and not rel.startswith("../"):
                below.add("" if rel == "." else rel + "/")

    def could_list(path: str) -> bool:
        return posixpath.dirname(path) in worked_in or any(path.startswith(b) for b in below)

    taken = needed | writes
    rest = [
        e for e in m.inputs if e.path not in taken and e.path not in earlier and could_list(e.path)
    ]
    rest_parents = set()
    for e in rest:
        d = posixpath.dirname(e.path)
        while d not in ("", ".") and d not in rest_parents:
            rest_parents.add(d)
            d = posixpath.dirname(d)
    return World(
        files=files,
        placeholders=listed,
        dirs=[recorded[d] for d in sorted(all_parents) if d in recorded],
        needed_dirs=sorted(d for d in all_parents if d not in recorded),
        intermediates=inters,
        argv=list(step.argv),
        cwd=cwd,
        env=process_environment(m, step),
        expected=expected,
        expected_status=shell_status(step.exit_code, step.signal),
        step=step,
        absent=absent,
        unavailable=unavailable,
        rewritten_later=sorted(later.items()),
        stale=stale,
        unseen=unseen,
        rest=[e for e in rest if e.link is not None],
        rest_placeholders=[e for e in rest if e.link is None],
        rest_dirs=[recorded[d] for d in sorted(rest_parents - all_parents) if d in recorded],
    )


def _made_by_the_step(
    m: Manifest,
    dirs: set[str],
    procs: list[Process],
    earlier: set[int],
    restored: list[FileEntry],
    cwd: str,
) -> set[str]:
    """Of the directories a step writes into, those it made itself, which the replay must
    not make for it (`mkdir out` without -p, and bdist_wheel's os.mkdir of its dist-info
    directory, fail if it is there), unless something the step starts with lies below."""
    ids = {p.id for p in procs}
    held = [posixpath.dirname(e.path) for e in restored]
    if not cwd.startswith("/"):
        held.append(cwd)

    def below(d: str, paths: list[str]) -> bool:
        return any(x == d or x.startswith(d + "/") for x in paths)

    if m.tracing.made_dirs and not any(p.static for p in procs):
        # Format 1.4: the tape says which process made each directory.
        made = {d for p in procs for d in p.made_dirs}
        made -= {d for p in m.processes if p.id in earlier for d in p.made_dirs}
        return {d for d in dirs if d in made and not below(d, held)}
    # Older tapes (or a step with a process the interposer could not see into): a guess.
    # The build made them and removed them again (no recorded listing has them), and no
    # process that ran before the step (or above it) wrote below them.
    listed = {d.path for d in m.directories}
    others = [w for p in m.processes if p.id in earlier and p.id not in ids for w in p.writes]
    return {d for d in dirs if d not in listed and not below(d, held) and not below(d, others)}


def _wall_ns(started_at: str, offset_s: float) -> int:
    """The wall-clock time (ns, as file mtimes count) ``offset_s`` into a build that
    started at ``started_at`` (ISO 8601, to the millisecond)."""
    try:
        base = datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 2**63  # no usable start: every file counts as made before the step
    # started_at is cut to the millisecond: a millisecond later is never too early.
    return int((base + offset_s + 0.001) * 1e9)


def _rewritten_later(
    m: Manifest, ids: set[int], above: set[int], start: float, paths: set[str]
) -> dict[str, int]:
    """Which of ``paths`` a process outside the step's subtree wrote or removed after the
    step started (an ancestor counts: its writes cannot be put before or after the
    step's), each with the first such process."""
    out: dict[str, int] = {}
    for p in sorted(m.processes, key=lambda p: (p.start_s, p.id)):
        if p.id in ids or not (p.start_s >= start or p.id in above):
            continue
        for path in (*p.writes, *p.deleted):
            if path in paths:
                out.setdefault(path, p.id)
    return out
