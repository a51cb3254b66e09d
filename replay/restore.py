"""Restoring recorded files into a directory, never writing outside it.

The shared reader has already refused absolute paths, ``..`` and links that escape
(resolved against each other, as the kernel would follow them); before writing, the
entries to restore are checked again as one set, with the byte, entry and size budgets
and free space. Regular files are written before any symlink is created, every target is
checked to lie inside the destination after resolving its parent, and files are created
with ``O_EXCL | O_NOFOLLOW``, so even a tape that slipped past the reader could not
redirect a write through a link.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from recorder import trust
from recorder.model import DirEntry, FileEntry, Intermediate
from recorder.tape import Tape
from recorder.trust import RestoreLimits
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


def check_restorable(
    tape: Tape, entries: list[FileEntry], dest: Path, limits: RestoreLimits | None = None
) -> None:
    """Refuse, before anything is written, what ``restore`` must not do.

    Links are resolved against each other (the links this restore creates), so no chain
    of them leads outside ``dest``; the bytes (a blob shared by several entries counts once
    per entry), the entry count and each file's size are checked against the entries' own
    declared sizes, the ceilings of ``limits`` (from ``BUILDTAPE_MAX_*``), and free space.
    """
    trust.check_links(((e.path, e.link) for e in entries), "restore")
    stored = [
        (e.path, e.size, tape.reader.blob_size(e.blob)) for e in entries if e.blob is not None
    ]
    probe = dest
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    trust.check_restore(
        stored, len(entries), free, limits or trust.RestoreLimits.from_env(os.environ)
    )


def restore(
    tape: Tape, entries: Iterable[FileEntry], dest: Path, limits: RestoreLimits | None = None
) -> Restored:
    """Write ``entries`` (workspace-relative) under ``dest``, which must be empty or absent.

    Files get the recorded permissions within ``0o755`` (no setuid, setgid, sticky, or
    write for group and others); large blobs are written as a stream.
    """
    entries = list(entries)
    check_restorable(tape, entries, dest, limits)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    out = Restored()
    files = sorted((e for e in entries if e.link is None), key=lambda e: e.path)
    links = sorted((e for e in entries if e.link is not None), key=lambda e: e.path)
    for entry in files:
        if entry.blob is None:
            out.missing.append(entry.path)
            continue
        make_dirs_inside(root, posixpath.dirname(entry.path))
        target = _inside(root, entry.path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                tape.reader.copy_blob(entry.blob, f)
        except BaseException:
            target.unlink()
            raise
        os.chmod(target, trust.restored_mode(entry.mode))
        out.files += 1
    for entry in links:
        assert entry.link is not None
        make_dirs_inside(root, posixpath.dirname(entry.path))
        target = _inside(root, entry.path)
        os.symlink(entry.link, target)
        out.links += 1
    for entry in links:  # the inner wall held; check what the kernel now resolves too
        if not _resolves_inside(root, root / entry.path):
            raise RestoreError(f"{trust.printable(entry.path)} resolves outside {root}; refusing")
    return out


def _resolves_inside(root: Path, path: Path) -> bool:
    resolved = Path(os.path.realpath(path))
    return resolved == root or root in resolved.parents


def make_dirs_inside(root: Path, rel: str) -> Path:
    """Create the directory ``rel`` under ``root`` (resolved), one component at a time.

    A component that exists must resolve inside ``root`` (a restored link may lead to
    another directory of the workspace, never out of it); ``..`` is refused.
    """
    here = root
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise RestoreError(f"{trust.printable(rel)} climbs out of {root}; refusing")
        here = here / part
        if not os.path.lexists(here):
            here.mkdir()
        if not _resolves_inside(root, here):
            raise RestoreError(f"{trust.printable(rel)} resolves outside {root}; refusing")
        here = Path(os.path.realpath(here))
        if not here.is_dir():
            raise RestoreError(f"{trust.printable(rel)} is not a directory in {root}")
    return here


def _create(root: Path, rel: str) -> int:
    make_dirs_inside(root, posixpath.dirname(rel))
    target = _inside(root, rel)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(target, flags, 0o600)


def restore_placeholders(
    entries: Iterable[FileEntry], dest: Path, limits: RestoreLimits | None = None
) -> int:
    """Files the tape lists without content: the recorded size (sparse), mode and mtime.

    They are the files the build never opened; ``make`` and friends only ``stat`` them.
    They take no space, but count against the entry limit.
    """
    entries = sorted(entries, key=lambda e: e.path)
    limits = limits or trust.RestoreLimits.from_env(os.environ)
    trust.check_restore([], len(entries), shutil.disk_usage(dest).free, limits)
    root = dest.resolve()
    count = 0
    for entry in entries:
        fd = _create(root, entry.path)
        try:
            os.ftruncate(fd, max(0, entry.size))
            os.fchmod(fd, trust.restored_mode(entry.mode))
        finally:
            os.close(fd)
        count += 1
    return count


def restore_intermediates(
    tape: Tape,
    entries: Iterable[Intermediate],
    tmp: Path,
    limits: RestoreLimits | None = None,
    under: str = "/tmp",
) -> list[str]:
    """Write intermediates recorded under ``under`` (``/tmp``) into ``tmp``, the directory
    that is ``under`` in the sandbox (its /tmp, or an overlay's upper layer).

    Returns the paths that could not be placed (not under it, or content not stored).
    Their bytes are checked against the restore limits first, like the workspace's.
    """
    root = tmp.resolve()
    prefix = under.rstrip("/") + "/"
    skipped, placed = [], []
    for inter in sorted(entries, key=lambda i: i.path):
        rel = inter.path[len(prefix) :] if inter.path.startswith(prefix) else None
        if rel is None or inter.blob is None or not rel or ".." in rel.split("/"):
            skipped.append(inter.path)
            continue
        placed.append((rel, inter))
    sizes = [(rel, i.size, tape.reader.blob_size(i.blob)) for rel, i in placed if i.blob]
    limits = limits or trust.RestoreLimits.from_env(os.environ)
    trust.check_restore(sizes, len(placed), shutil.disk_usage(root).free, limits)
    for rel, inter in placed:
        assert inter.blob is not None
        fd = _create(root, rel)
        with os.fdopen(fd, "wb") as f:
            tape.reader.copy_blob(inter.blob, f)
        os.chmod(root / rel, trust.restored_mode(inter.mode))
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
            os.chmod(target, trust.restored_mode(d.mode))
            os.utime(target, ns=(d.mtime_ns, d.mtime_ns))
            count += 1
    return count
