"""What a run changed in the restored workspace, seen from outside the sandbox.

The build runs in bwrap with no recorder of ours inside (a second interpreter's start-up
was most of what a replay cost beyond the build); the workspace it wrote is the sandbox's
own directory on the host, so its outputs are found here: one stat-only walk before the
run and one after, and content is read (hashed) only for what changed.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from recorder.model import FileEntry
from recorder.workspace import FileState, Survey, survey

_CHUNK = 1 << 20


def before(root: Path) -> Survey:
    return survey(root, ())


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def changes(root: Path, start: Survey) -> list[FileEntry]:
    """Every file created, written (by stat: even to the same content) or deleted under
    ``root`` since ``start``."""
    after = survey(root, ())
    out: list[FileEntry] = []
    for rel, new in sorted(after.files.items()):
        old = start.files.get(rel)
        if old is not None and _same(old, new):
            continue
        change = "created" if old is None else "modified"
        if new.link is not None:
            out.append(FileEntry(rel, new.mode, 0, None, None, new.link, change, new.mtime_ns))
            continue
        sha = _sha256(root / rel) if stat.S_ISREG(new.mode) else None
        out.append(FileEntry(rel, new.mode, new.size, sha, None, None, change, new.mtime_ns))
    for rel in sorted(set(start.files) - set(after.files)):
        old = start.files[rel]
        out.append(FileEntry(rel, old.mode, old.size, None, None, old.link, "deleted"))
    return out


def _same(old: FileState, new: FileState) -> bool:
    return (old.mode, old.size, old.mtime_ns, old.inode, old.link) == (
        new.mode, new.size, new.mtime_ns, new.inode, new.link,
    )  # fmt: skip
