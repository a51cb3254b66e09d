"""The workspace before and after a build: every file's mode, size and sha256.

The first scan reads each file once, hashing it and handing its bytes to ``store``
so that content is captured before the build can change it. The second scan hashes
again only files whose stat changed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from recorder.git import git as _git
from recorder.model import FileEntry, GitState, link_stays_inside

ALWAYS_EXCLUDED = (".git", ".buildtape")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileState:
    path: str
    mode: int
    size: int
    mtime_ns: int
    inode: int
    sha256: str | None
    link: str | None = None
    blob: str | None = None

    def entry(self, change: str | None = None) -> FileEntry:
        return FileEntry(self.path, self.mode, self.size, self.sha256, self.blob, self.link, change)


# Called with a relative path, its bytes and their sha256; returns the blob name, or None
# to keep only the hash.
Store = Callable[[str, bytes, str], "str | None"]


def exclusion(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a relative path, or its file name, matches one of the glob ``patterns``.

    The globs become one regular expression: a walk asks this of every path.
    """
    if not patterns:
        return lambda rel: False
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match

    def excluded(rel: str) -> bool:
        return bool(match(rel) or match(rel.rsplit("/", 1)[-1]))

    return excluded


def walk(root: Path, excludes: tuple[str, ...]) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative path, lstat) of every file and symlink, in sorted order."""
    excluded = exclusion(ALWAYS_EXCLUDED + excludes)
    stack = [""]
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
            elif stat.S_ISREG(st.st_mode) or (
                # A tape restores only inside its workspace, so a link that points out of it
                # is not part of the build's state; readers refuse such links.
                stat.S_ISLNK(st.st_mode) and _link_inside(root, rel)
            ):
                yield rel, st
        stack.extend(reversed(subdirs))


def _link_inside(root: Path, rel: str) -> bool:
    try:
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


def _state(
    root: Path, rel: str, st: os.stat_result, store: Store | None, max_store: int
) -> FileState:
    full = root / rel
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(full)
        except OSError:
            target = ""
        return FileState(rel, st.st_mode, 0, st.st_mtime_ns, st.st_ino, None, link=target)
    if store is None or st.st_size > max_store:
        digest = hash_file(full)
        return FileState(rel, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, digest)
    try:
        data = full.read_bytes()
    except OSError:
        return FileState(rel, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, None)
    digest = hashlib.sha256(data).hexdigest()
    blob = store(rel, data, digest)
    return FileState(rel, st.st_mode, len(data), st.st_mtime_ns, st.st_ino, digest, blob=blob)


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
        unchanged = (
            old is not None
            and old.mode == st.st_mode
            and old.size == (0 if stat.S_ISLNK(st.st_mode) else st.st_size)
            and old.mtime_ns == st.st_mtime_ns
            and old.inode == st.st_ino
        )
        if unchanged:
            continue
        new = _state(root, rel, st, store, max_store)
        if old is None:
            created.append(new)
        elif (new.sha256, new.link, new.mode) != (old.sha256, old.link, old.mode):
            modified.append(new)
    deleted = [s for rel, s in before.items() if rel not in seen]
    return Changes(created, modified, deleted)


def git_state(root: Path) -> GitState | None:
    if _git(root, "rev-parse", "--is-inside-work-tree") is None:
        return None
    commit = _git(root, "rev-parse", "HEAD")
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(root, "status", "--porcelain", "-z", "--untracked-files=all") or ""
    dirty = sorted({item[3:] for item in status.split("\0") if len(item) > 3})
    return GitState(
        commit.strip() if commit else None,
        branch.strip() if branch else None,
        dirty,
    )
