"""The workspace before and after a build.

``survey`` is the default: one stat-only walk (path, mode, size, mtime, and the
directories), nothing read, so its cost follows the number of files, not their size.
What the build touched gets its content later (``recorder.observe``). ``scan``/``rescan``
are ``--snapshot full``: every file read, hashed and stored before the build.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from recorder.git import git as _git

if TYPE_CHECKING:
    from recorder.model import FileEntry, GitState

ALWAYS_EXCLUDED = (".git", ".buildtape")
_GLOB = re.compile(r"[*?\[]")
_CHUNK = 1 << 20


class FileState(NamedTuple):
    """One file by stat (and, once read, its digest). A tuple: a walk makes 20,000 of them,
    and a tuple is built four times faster than a frozen dataclass."""

    path: str
    mode: int
    size: int
    mtime_ns: int
    inode: int
    sha256: str | None
    link: str | None = None
    blob: str | None = None
    # Compared, never stored: a rewrite that puts the mtime back (`touch -r`, `cp -p`,
    # `tar x` over a file of the same size) keeps size, mtime and inode, but not the ctime,
    # which no call can set (the hash cache's racy pattern, recorder/hashcache.py). A hard
    # link made or removed moves the ctime too, and the link count says so.
    ctime_ns: int = 0
    nlink: int = 0

    def same_change_time(self, ctime_ns: int, nlink: int) -> bool:
        """No change the ctime would show, but for a hard link (``ln``, ``cp -l``)."""
        return self.ctime_ns == ctime_ns or self.nlink != nlink

    def entry(self, change: str | None = None) -> FileEntry:
        return _file_entry()(
            self.path,
            self.mode,
            self.size,
            self.sha256,
            self.blob,
            self.link,
            change,
            self.mtime_ns,
        )


def _file_entry() -> type[FileEntry]:
    """``FileEntry``, imported on first use: a recording's survey runs before the build, and
    the model's import is left until the build runs (see ``recorder.record``)."""
    global _FILE_ENTRY
    if _FILE_ENTRY is None:
        from recorder.model import FileEntry

        _FILE_ENTRY = FileEntry
    return _FILE_ENTRY


_FILE_ENTRY: type[FileEntry] | None = None


# Called with a relative path, its bytes and their sha256; returns the blob name, or None
# to keep only the hash.
Store = Callable[[str, bytes, str], "str | None"]


def exclusion(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a relative path, or its file name, matches one of the glob ``patterns``.

    The globs become one regular expression: a walk asks this of every path.
    """
    # Plain names (.git, node_modules) are a set lookup of the file name; only globs and
    # paths with a slash need the expression.
    names = frozenset(p for p in patterns if "/" not in p and not _GLOB.search(p))
    rest = [p for p in patterns if p not in names]
    if not rest:
        return lambda rel: rel.rpartition("/")[2] in names
    match = re.compile("|".join(fnmatch.translate(p) for p in rest)).match

    def excluded(rel: str) -> bool:
        name = rel.rpartition("/")[2]
        return name in names or bool(match(rel) or match(name))

    return excluded


class DirState(NamedTuple):
    path: str
    mode: int
    mtime_ns: int


@dataclass(frozen=True)
class Survey:
    """The workspace by stat only: files (without hashes) and directories."""

    files: dict[str, FileState]
    dirs: dict[str, DirState]
    # The workspace directory itself, and when the walk began (ns), for ``resurvey``.
    root: DirState | None = None
    started_ns: int = 0


def survey(root: Path, excludes: tuple[str, ...]) -> Survey:
    started = time.time_ns()
    dirs: dict[str, DirState] = {}
    files: dict[str, FileState] = {}
    for rel, st in walk(root, excludes, dirs):
        files[rel] = _listed(root, rel, st)
    try:
        top = os.stat(root)
        here = DirState("", top.st_mode, top.st_mtime_ns)
    except OSError:
        here = None
    return Survey(files, dirs, here, started)


def _listed(root: Path, rel: str, st: os.stat_result) -> FileState:
    link = None
    if stat.S_ISLNK(st.st_mode):
        try:
            link = os.readlink(root / rel)
        except OSError:
            link = ""
    size = 0 if link is not None else st.st_size
    return FileState(
        rel, st.st_mode, size, st.st_mtime_ns, st.st_ino, None, link, None,
        st.st_ctime_ns, st.st_nlink,
    )  # fmt: skip


# A directory changed this close to the walk may change again within the same tick of the
# file system's clock and keep its mtime: such directories are always listed again.
_CLOCK_SLACK_NS = 100_000_000


def resurvey(root: Path, excludes: tuple[str, ...], before: Survey, suspects: set[str]) -> Survey:
    """The workspace after a build whose every change the interposer saw, without a walk.

    A file created, removed or renamed changes its directory's mtime, so only directories
    whose mtime moved are listed again (and new ones walked); a file changed in place, or
    whose mode or times changed, is in ``suspects`` (workspace-relative paths that some
    process wrote, deleted, renamed, truncated, chmod-ed or touched), and only those are
    stat-ed again. On a workspace of 20,000 files and a build that touched ten, that is a
    few hundred stats instead of 20,000.
    """
    excluded = exclusion(ALWAYS_EXCLUDED + excludes)
    files = dict(before.files)
    dirs = dict(before.dirs)
    children: dict[str, list[str]] = {}
    for rel in files:
        children.setdefault(rel.rpartition("/")[0], []).append(rel)
    subdirs: dict[str, list[str]] = {}
    for rel in dirs:
        subdirs.setdefault(rel.rpartition("/")[0], []).append(rel)
    recent = before.started_ns - _CLOCK_SLACK_NS

    def drop_tree(rel_dir: str) -> None:
        for f in children.pop(rel_dir, []):
            files.pop(f, None)
        for d in subdirs.pop(rel_dir, []):
            dirs.pop(d, None)
            drop_tree(d)

    def relist(rel_dir: str) -> None:
        path = root / rel_dir if rel_dir else root
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        names = {e.name for e in entries}
        for f in children.get(rel_dir, []):
            if f.rpartition("/")[2] not in names:
                files.pop(f, None)
        for d in subdirs.get(rel_dir, []):
            if d.rpartition("/")[2] not in names:
                dirs.pop(d, None)
                drop_tree(d)
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if excluded(rel):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if rel not in before.dirs:
                    new_dirs: dict[str, DirState] = {}
                    for f, fst in walk(root, excludes, new_dirs, start=rel):
                        files[f] = _listed(root, f, fst)
                    dirs.update(new_dirs)
                dirs[rel] = DirState(rel, st.st_mode, st.st_mtime_ns)
            elif _kept(root, rel, st):
                files[rel] = _listed(root, rel, st)
            else:
                files.pop(rel, None)

    listed: set[str] = set()
    for rel, old in [("", before.root), *before.dirs.items()]:
        if old is None:
            continue
        try:
            st = os.stat(root / rel if rel else root, follow_symlinks=False)
        except OSError:
            continue  # gone: its parent's mtime moved, and listing the parent drops it
        if not stat.S_ISDIR(st.st_mode):
            continue
        if st.st_mtime_ns != old.mtime_ns or old.mtime_ns >= recent:
            relist(rel)
            listed.add(rel)
        if rel and st.st_mode != old.mode:
            dirs[rel] = DirState(rel, st.st_mode, st.st_mtime_ns)
    for rel in sorted(suspects):
        if rel.rpartition("/")[0] in listed or _excluded_path(excluded, rel):
            continue
        try:
            st = os.lstat(root / rel)
        except OSError:
            files.pop(rel, None)
            continue
        if stat.S_ISDIR(st.st_mode):
            if rel in dirs:
                dirs[rel] = DirState(rel, st.st_mode, st.st_mtime_ns)
        elif _kept(root, rel, st):
            files[rel] = _listed(root, rel, st)
    return Survey(files, dirs, before.root, before.started_ns)


def _kept(root: Path, rel: str, st: os.stat_result) -> bool:
    """What a walk lists: regular files, and links that stay inside the workspace."""
    return stat.S_ISREG(st.st_mode) or (stat.S_ISLNK(st.st_mode) and _link_inside(root, rel))


def same_stat(old: FileState, st: os.stat_result) -> bool:
    return (
        old.mode == st.st_mode
        and old.size == (0 if stat.S_ISLNK(st.st_mode) else st.st_size)
        and old.mtime_ns == st.st_mtime_ns
        and old.inode == st.st_ino
        and old.same_change_time(st.st_ctime_ns, st.st_nlink)
    )


def walk(
    root: Path,
    excludes: tuple[str, ...],
    dirs: dict[str, DirState] | None = None,
    start: str = "",
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative path, lstat) of every file and symlink, in sorted order.

    With ``dirs``, every directory walked is added to it, by stat. ``start`` walks only
    the subtree under that relative directory.
    """
    excluded = exclusion(ALWAYS_EXCLUDED + excludes)
    stack = [start]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = sorted(os.scandir(root / rel_dir if rel_dir else root), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if excluded(rel):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(rel)
                if dirs is not None:
                    dirs[rel] = DirState(rel, st.st_mode, st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode) or (
                # A tape restores only inside its workspace, so a link that points out of it
                # is not part of the build's state; readers refuse such links.
                stat.S_ISLNK(st.st_mode) and _link_inside(root, rel)
            ):
                yield rel, st
        stack.extend(reversed(subdirs))


def _link_inside(root: Path, rel: str) -> bool:
    try:
        from recorder.model import link_stays_inside

        return link_stays_inside(rel, os.readlink(root / rel))
    except OSError:
        return False


def hash_file(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def content_state(
    root: Path, rel: str, st: os.stat_result, store: Store | None, max_store: int
) -> FileState:
    """The file's state with its sha256, its bytes handed to ``store`` when small enough."""
    return _state(root, rel, st, store, max_store)


def _state(
    root: Path, rel: str, st: os.stat_result, store: Store | None, max_store: int
) -> FileState:
    full = root / rel
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(full)
        except OSError:
            target = ""
        return _stated(rel, st, 0, None, target)
    if store is None or st.st_size > max_store:
        return _stated(rel, st, st.st_size, hash_file(full))
    try:
        data = full.read_bytes()
    except OSError:
        return _stated(rel, st, st.st_size, None)
    digest = hashlib.sha256(data).hexdigest()
    return _stated(rel, st, len(data), digest, None, store(rel, data, digest))


def _stated(
    rel: str,
    st: os.stat_result,
    size: int,
    digest: str | None,
    link: str | None = None,
    blob: str | None = None,
) -> FileState:
    return FileState(
        rel, st.st_mode, size, st.st_mtime_ns, st.st_ino, digest, link, blob,
        st.st_ctime_ns, st.st_nlink,
    )  # fmt: skip


def scan(
    root: Path, excludes: tuple[str, ...], store: Store | None, max_store: int
) -> dict[str, FileState]:
    return {rel: _state(root, rel, st, store, max_store) for rel, st in walk(root, excludes)}


@dataclass(frozen=True)
class Changes:
    created: list[FileState]
    modified: list[FileState]
    deleted: list[FileState]

    def entries(self) -> list[FileEntry]:
        out = [s.entry("created") for s in self.created]
        out += [s.entry("modified") for s in self.modified]
        out += [s.entry("deleted") for s in self.deleted]
        return sorted(out, key=lambda e: e.path)


def rescan(
    root: Path,
    excludes: tuple[str, ...],
    before: dict[str, FileState],
    store: Store | None,
    max_store: int,
) -> Changes:
    created: list[FileState] = []
    modified: list[FileState] = []
    seen: set[str] = set()
    for rel, st in walk(root, excludes):
        seen.add(rel)
        old = before.get(rel)
        if old is not None and same_stat(old, st):
            continue
        new = _state(root, rel, st, store, max_store)
        if old is None:
            created.append(new)
        elif (new.sha256, new.link, new.mode) != (old.sha256, old.link, old.mode):
            modified.append(new)
    deleted = [s for rel, s in before.items() if rel not in seen]
    return Changes(created, modified, deleted)


class GitStatus(NamedTuple):
    """``GitState``'s fields, as asked of git before the build (see ``git_state``)."""

    commit: str | None
    branch: str | None
    dirty: list[str]


def git_state(root: Path, excludes: tuple[str, ...] = ()) -> GitState | None:
    """The commit, branch and dirty paths; paths the tape leaves out are not counted."""
    from recorder.model import GitState

    status = git_status(root, excludes)
    return None if status is None else GitState(*status)


def git_status(root: Path, excludes: tuple[str, ...] = ()) -> GitStatus | None:
    """``git_state`` without the manifest's type: a recording asks git before the build
    starts, and defers importing the model until the build runs.

    One ``git status --porcelain=v2 --branch`` gives the commit, the branch and every
    changed path: the build waits for it, and four git processes took 20-60 ms.
    """
    status = _git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
    if status is None:
        return None  # not a work tree (or no git)
    commit = branch = None
    paths: list[str] = []
    records = iter(status.split("\0"))
    for record in records:
        kind = record[:2]
        if kind == "# ":
            key, _, value = record[2:].partition(" ")
            if key == "branch.oid" and value != "(initial)":
                commit = value
            elif key == "branch.head":
                branch = "HEAD" if value == "(detached)" else value
        elif kind in ("1 ", "u "):  # changed; unmerged
            paths.append(record.split(" ", 8 if kind == "1 " else 10)[-1])
        elif kind == "2 ":  # renamed or copied: the original path is the next record
            paths.append(record.split(" ", 9)[-1])
            paths.append(next(records, ""))
        elif kind in ("? ", "! "):
            paths.append(record[2:])
    excluded = _excluded_cached(exclusion(ALWAYS_EXCLUDED + excludes))
    dirty = sorted({p for p in paths if p and not _excluded_path(excluded, p)})
    return GitStatus(commit, branch, dirty)


def _excluded_cached(excluded: Callable[[str], bool]) -> Callable[[str], bool]:
    """``excluded``, remembered: thousands of untracked paths share a few directories."""
    memo: dict[str, bool] = {}

    def cached(rel: str) -> bool:
        hit = memo.get(rel)
        if hit is None:
            hit = memo[rel] = excluded(rel)
        return hit

    return cached


def _excluded_path(excluded: Callable[[str], bool], rel: str) -> bool:
    """Whether ``rel`` or one of its parent directories is excluded (as the walk skips it)."""
    parts = rel.rstrip("/").split("/")
    return any(excluded("/".join(parts[: i + 1])) for i in range(len(parts)))
