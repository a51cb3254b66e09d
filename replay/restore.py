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

from recorder.model import FileEntry
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
