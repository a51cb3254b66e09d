"""Restoring recorded files into a directory, never writing outside it.

The shared reader has already refused absolute paths, ``..`` and links that escape;
here regular files are written before any symlink is created, every target is checked to
lie inside the destination after resolving its parent, and files are created with
``O_EXCL | O_NOFOLLOW``, so even a tape that slipped past the reader could not redirect a
write through a link.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from recorder.model import DirEntry, FileEntry, Intermediate
from recorder.reading import Tape
from replay.errors import RestoreError


@dataclass
class Restored:
    files: int = 0
    links: int = 0
    # Paths whose content the tape does not hold (too large, or it contained a secret).
    missing: list[str] = field(default_factory=list)


def _inside(root: Path, rel: str) -> Path:
    target = root / rel
    parent = target.parent.resolve()
    if parent != root and root not in parent.parents:
        raise RestoreError(f"{rel} would be written outside {root}; refusing")
    return parent / target.name


def restore(tape: Tape, entries: Iterable[FileEntry], dest: Path) -> Restored:
    """Write ``entries`` (workspace-relative) under ``dest``, which must be empty or absent."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    out = Restored()
    files = sorted((e for e in entries if e.link is None), key=lambda e: e.path)
    links = sorted((e for e in entries if e.link is not None), key=lambda e: e.path)
    for entry in files:
        if entry.blob is None:
            out.missing.append(entry.path)
            continue
        data = tape.blob(entry.blob)
        (root / entry.path).parent.mkdir(parents=True, exist_ok=True)
        target = _inside(root, entry.path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(target, entry.mode & 0o7777)
        out.files += 1
    for entry in links:
        assert entry.link is not None
        (root / entry.path).parent.mkdir(parents=True, exist_ok=True)
        target = _inside(root, entry.path)
        os.symlink(entry.link, target)
        out.links += 1
    return out


def _create(root: Path, rel: str) -> int:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    target = _inside(root, rel)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(target, flags, 0o600)


def restore_placeholders(entries: Iterable[FileEntry], dest: Path) -> int:
    """Files the tape lists without content: the recorded size (sparse), mode and mtime.

    They are the files the build never opened; ``make`` and friends only ``stat`` them.
    """
    root = dest.resolve()
    count = 0
    for entry in sorted(entries, key=lambda e: e.path):
        fd = _create(root, entry.path)
        try:
            os.ftruncate(fd, max(0, entry.size))
            os.fchmod(fd, entry.mode & 0o7777)
        finally:
            os.close(fd)
        count += 1
    return count


def restore_intermediates(tape: Tape, entries: Iterable[Intermediate], tmp: Path) -> list[str]:
    """Write intermediates recorded under ``/tmp`` into ``tmp`` (the sandbox's /tmp).

    Returns the paths that could not be placed (not under /tmp, or content not stored).
    """
    root = tmp.resolve()
    skipped = []
    for inter in sorted(entries, key=lambda i: i.path):
        rel = inter.path[len("/tmp/") :] if inter.path.startswith("/tmp/") else None
        if rel is None or inter.blob is None or not rel or ".." in rel.split("/"):
            skipped.append(inter.path)
            continue
        fd = _create(root, rel)
        with os.fdopen(fd, "wb") as f:
            f.write(tape.blob(inter.blob))
        os.chmod(root / rel, inter.mode & 0o7777)
    return skipped


def set_mtimes(dest: Path, files: Iterable[FileEntry], dirs: Iterable[DirEntry]) -> int:
    """Give restored files and directories their recorded mtimes (directories last,
    deepest first, as writing a file changes its directory's mtime)."""
    root = dest.resolve()
    count = 0
    for entry in files:
        if entry.mtime_ns is None:
            continue
        target = _inside(root, entry.path)
        if os.path.lexists(target):
            os.utime(target, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
            count += 1
    for d in sorted(dirs, key=lambda d: (-d.path.count("/"), d.path)):
        target = _inside(root, d.path)
        if os.path.isdir(target) and not os.path.islink(target):
            os.chmod(target, d.mode & 0o7777)
            os.utime(target, ns=(d.mtime_ns, d.mtime_ns))
            count += 1
    return count
