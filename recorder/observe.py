"""Phase 4 of a recording: the content of what the build touched, and nothing else.

After the build, what was created, modified or deleted comes from a second stat-only
walk, or, when every process ran the interposer, from the directories whose mtime moved
and the paths the interposer saw changed (``recorder.workspace.resurvey``).
Content is stored for: every workspace file a step read or executed, every file the
build created or changed (its new bytes), the *pre-build* bytes of every file it
changed or deleted (kept by the interposer just before the first change), and
intermediates outside the workspace that one step wrote and another read. Everything
else stays a stat-only listing, so the cost follows what the build touched, never the
size of the repository.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from recorder.build import BuildRun
from recorder.interposer import InterposerRecords
from recorder.model import BuildWarning, DirEntry, FileEntry, Intermediate, ListedRow, Version
from recorder.prepare import Plan, relative
from recorder.strace_parser import TracedProcess
from recorder.workspace import FileState, Survey, content_state, hash_file, resurvey, survey

# Called with a kind (input/output/intermediate), a path, the bytes and their sha256;
# returns the blob name, or None when the content must not be stored.
Store = Callable[[str, str, bytes, str], "str | None"]
_SKIPPED = ("/proc/", "/sys/", "/dev/")
# Versions kept per path, in all, and their bytes: a step replay's comparison is worth a
# little room in the tape, not a copy of every line a configure script appends to its log.
_VERSIONS_PER_PATH = 4
_VERSIONS = 256
_VERSION_BYTES = 64 << 20


@dataclass
class Observation:
    # The workspace files the build read or changed (with their pre-build content).
    inputs: list[FileEntry]
    outputs: list[FileEntry]
    directories: list[DirEntry]
    # Intermediates name processes by pid here; assembly maps them to process ids.
    intermediates: list[Intermediate]
    warnings: list[BuildWarning] = field(default_factory=list)
    # How many workspace files had their content stored, for the closing line and tests.
    stored_inputs: int = 0
    # How the changes were found: "walk" or "seen" (``recorder.model.Tracing.changes``).
    changes: str = "walk"
    # Files as one step left them before another replaced them; pids, mapped by assembly.
    versions: list[Version] = field(default_factory=list)
    # Every other workspace file, by stat only (``recorder.model.ListedRow``).
    listed: list[ListedRow] = field(default_factory=list)


def _touched(traced: Iterable[TracedProcess], workspace: str) -> tuple[set[str], set[str]]:
    """Workspace-relative paths the build read or executed, and absolute ones outside it."""
    inside: set[str] = set()
    outside: set[str] = set()
    for proc in traced:
        paths = list(proc.reads)
        if proc.exe:
            paths.append(proc.exe)
        for path in paths:
            rel = relative(path, workspace)
            if rel.startswith("/"):
                outside.add(rel)
            elif rel != ".":
                inside.add(rel)
    return inside, outside


def _changed_paths(
    traced: Iterable[TracedProcess], records: InterposerRecords, workspace: str
) -> set[str]:
    """Workspace-relative paths some process wrote, deleted, renamed or re-moded."""
    out: set[str] = set()
    for proc in traced:
        for path in (*proc.writes, *proc.deleted):
            rel = relative(path, workspace)
            if not rel.startswith("/") and rel != ".":
                out.add(rel)
    for path in records.attrs:
        rel = relative(path, workspace)
        if not rel.startswith("/") and rel != ".":
            out.add(rel)
    return out


def _attrs_only(
    traced: Iterable[TracedProcess], records: InterposerRecords | None, workspace: str
) -> set[str]:
    """Paths whose mode or times changed and that no process opened for writing."""
    if records is None:
        return set()
    written = {p for proc in traced for p in (*proc.writes, *proc.deleted)}
    return {relative(p, workspace) for p in records.attrs if p not in written}


def _same_size(path: Path, old: FileState) -> bool:
    try:
        return path.stat().st_size == old.size
    except OSError:
        return False


def _same_state(old: FileState, new: FileState) -> bool:
    # The ctime too: a same-size rewrite that put the mtime back is a change.
    return (old.mode, old.size, old.mtime_ns, old.inode, old.link) == (
        new.mode,
        new.size,
        new.mtime_ns,
        new.inode,
        new.link,
    ) and old.same_change_time(new.ctime_ns, new.nlink)


def _saved_copy(save_dir: Path | None, name: str | None, old: FileState) -> Path | None:
    """The interposer's copy of ``old`` when it still holds the pre-build bytes."""
    if save_dir is None or name is None:
        return None
    copy = save_dir / name
    try:
        st = copy.stat()
    except OSError:
        return None
    if st.st_size != old.size or st.st_mtime_ns != old.mtime_ns:
        return None  # a process the interposer cannot see changed it first
    return copy


def _store_file(
    path: Path, kind: str, rel: str, store: Store, max_store: int
) -> tuple[str | None, str | None]:
    """(sha256, blob) of a file, its content stored when not too large."""
    try:
        size = path.stat().st_size
        if size > max_store:
            return hash_file(path), None
        data = path.read_bytes()
    except OSError:
        return None, None
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    return digest, store(kind, rel, data, digest)


def observe(plan: Plan, before: Survey, run: BuildRun, store: Store) -> Observation:
    root = plan.workspace
    ws = str(root)
    max_store = plan.options.max_store_bytes
    records = run.records
    by_walk = not (run.every_change_seen and records is not None)
    if records is not None and not by_walk:
        after = resurvey(root, plan.excludes, before, _changed_paths(run.traced, records, ws))
    else:
        after = survey(root, plan.excludes)
    warnings: list[BuildWarning] = []
    saves = records.saves if records is not None else {}

    def store_state(kind: str, rel: str, st: os.stat_result) -> FileState:
        def keep(r: str, data: bytes, digest: str) -> str | None:
            return store(kind, r, data, digest)

        return content_state(root, rel, st, keep, max_store)

    # What changed, by stat; content is read only for those.
    outputs: list[FileEntry] = []
    changed: set[str] = set()
    for rel, new in after.files.items():
        old = before.files.get(rel)
        if old is not None and _same_state(old, new):
            continue  # the walk's own stat says so: no second stat of 20,000 untouched files
        try:
            st = os.lstat(root / rel)
        except OSError:
            continue
        state = store_state("output", rel, st)
        if old is None:
            outputs.append(state.entry("created"))
        else:
            changed.add(rel)
            outputs.append(state.entry("modified"))
    deleted = [rel for rel in before.files if rel not in after.files]
    for rel in deleted:
        outputs.append(before.files[rel].entry("deleted"))
        changed.add(rel)

    inside, outside = _touched(run.traced, ws)
    only_attrs = _attrs_only(run.traced, records, ws) if run.every_change_seen else set()
    # Only the files the build touched become entries; the rest stay rows (``listed``).
    inputs: dict[str, FileEntry] = {}
    stored = 0
    lost: list[str] = []
    for rel in sorted(inside | changed):
        old = before.files.get(rel)
        if old is None or old.link is not None:
            continue  # created by the build (an output), or a link (its target is enough)
        if rel in changed:
            copy = _saved_copy(run.save_dir, saves.get(os.path.join(ws, rel)), old)
            if copy is None and rel in only_attrs and _same_size(root / rel, old):
                copy = root / rel  # only its mode or times changed: the bytes are the old ones
            if copy is None:
                lost.append(rel)
                continue
            sha, blob = _store_file(copy, "input", rel, store, max_store)
        else:
            sha, blob = _store_file(root / rel, "input", rel, store, max_store)
        if sha is not None:
            stored += blob is not None
            inputs[rel] = FileEntry(rel, old.mode, old.size, sha, blob, None, None, old.mtime_ns)
    # A modified file whose new content equals its old one was only touched.
    pre = {e.path: e.sha256 for e in inputs.values() if e.sha256}
    outputs = [
        o
        for o in outputs
        if not (o.change == "modified" and pre.get(o.path) == o.sha256 and o.sha256)
        or inputs[o.path].mode != o.mode
    ]
    listed: list[ListedRow] = [
        (rel, s.mode, s.size, s.mtime_ns)
        if s.link is None
        else (rel, s.mode, 0, s.mtime_ns, s.link)
        for rel, s in sorted(before.files.items())
        if rel not in inputs
    ]
    if lost and records is not None:
        shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
        warnings.append(
            BuildWarning(
                "prebuild_content_lost",
                f"the pre-build content of {len(lost)} changed file(s) was not captured "
                f"({shown}): a process the interposer cannot see changed them first; "
                "record with --trace strace --snapshot full to keep it",
            )
        )

    directories = [DirEntry(d.path, d.mode, d.mtime_ns) for d in before.dirs.values()]
    directories += [
        DirEntry(d.path, d.mode, d.mtime_ns, "created")
        for rel, d in after.dirs.items()
        if rel not in before.dirs
    ]
    directories += [
        DirEntry(d.path, d.mode, d.mtime_ns, "deleted")
        for rel, d in before.dirs.items()
        if rel not in after.dirs
    ]
    intermediates = _intermediates(plan, run, outside, store)
    return Observation(
        inputs=[inputs[k] for k in sorted(inputs)],
        listed=listed,
        outputs=sorted(outputs, key=lambda e: e.path),
        directories=sorted(directories, key=lambda d: (d.path, d.change or "")),
        intermediates=intermediates,
        warnings=warnings,
        stored_inputs=stored,
        changes="walk" if by_walk else "seen",
        versions=_versions(plan, run, store),
    )


def _prefix(path: Path, size: int) -> bytes | None:
    with open(path, "rb") as f:
        data = f.read(size)
    return data if len(data) == size else None


def _versions(plan: Plan, run: BuildRun, store: Store) -> list[Version]:
    """Workspace files as one process left them before another replaced them.

    Kept also when the bytes equal the final output (ranlib rewrites an archive ``ar``
    already indexed): a step replay then knows it may compare; the blob is the output's.
    """
    if run.records is None or run.save_dir is None:
        return []
    ws = str(plan.workspace)
    seen: set[tuple[str, int]] = set()
    replaced_after: dict[str, int] = {}  # path -> index of its last replacing record
    for i, (path, kept, _, _) in enumerate(run.records.versions):
        if isinstance(kept, str):
            replaced_after[path] = i
    out: list[Version] = []
    per_path: dict[str, int] = {}
    total = 0
    for i, (path, kept, writer, replacer) in enumerate(run.records.versions):
        rel = relative(path, ws)
        if rel.startswith("/") or (rel, replacer) in seen:
            continue  # one per replacing process (mv tries rename twice)
        seen.add((rel, replacer))
        if per_path.get(rel, 0) >= _VERSIONS_PER_PATH or len(out) >= _VERSIONS:
            continue  # a log many steps append to (config.log): its steps go uncompared
        if isinstance(kept, str):
            source = run.save_dir / kept
        elif replaced_after.get(path, -1) < i:
            # Only appended to since: what ``writer`` left is that prefix of the result.
            source = plan.workspace / rel
        else:
            continue
        try:
            data = source.read_bytes() if isinstance(kept, str) else _prefix(source, kept)
            mode = source.stat().st_mode & 0o777
        except OSError:
            continue
        if data is None or len(data) > plan.options.max_store_bytes:
            continue
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        if total + len(data) > _VERSION_BYTES:
            continue
        total += len(data)
        per_path[rel] = per_path.get(rel, 0) + 1
        blob = store("output", rel, data, sha)
        out.append(Version(rel, mode, len(data), sha, blob, writer, replacer))
    return out


def _intermediates(
    plan: Plan, run: BuildRun, read_outside: set[str], store: Store
) -> list[Intermediate]:
    """Files outside the workspace that one process wrote and another read."""
    writers: dict[str, list[int]] = {}
    readers: dict[str, list[int]] = {}
    for proc in run.traced:
        for path in proc.writes:
            if not path.startswith(plan.workspace.as_posix() + "/"):
                writers.setdefault(path, []).append(proc.pid)
        for path in proc.reads:
            if path in read_outside:
                readers.setdefault(path, []).append(proc.pid)
    saved: dict[str, str] = {}
    if run.records is not None:
        for path, name, _ in run.records.intermediates:
            saved[path] = name  # the last copy: the bytes just before the build deleted it
    own = (str(plan.tape_path), str(run.save_dir or ""), "/tmp/buildtape-")
    out = []
    for path in sorted(writers):
        readers_of = [pid for pid in readers.get(path, []) if pid not in writers[path]]
        if not readers_of or path.startswith(_SKIPPED) or path.startswith(own):
            continue
        source = Path(path)
        if path in saved and run.save_dir is not None:
            source = run.save_dir / saved[path]
        try:
            st = source.stat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        sha, blob = _store_file(source, "intermediate", path, store, plan.options.max_store_bytes)
        if sha is None:
            continue
        out.append(
            Intermediate(path, st.st_mode & 0o777, st.st_size, sha, blob, writers[path], readers_of)
        )
    return out
