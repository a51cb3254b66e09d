"""Remembers the sha256 and version line of toolchain files between recordings.

Every recording fingerprints the compilers, headers and libraries it used; hashing a
30 MB ``cc1`` and running ``--version`` each time is wasted work when nothing changed.
An entry is reused only while the file's size, mtime, ctime and inode are all the same
(ctime cannot be set back by user programs), and only when the file had last changed well
before the entry was made. A file rewritten with the same size within one tick of its file
system's clock keeps every one of those stamps, so an entry made in that tick would hand
back the old content's hash for the new content; git calls such an entry "racily clean".
Like git, the cache does not trust it: the file is hashed again, and the entry it then
makes, once the file has been left alone, is trusted. A version line is keyed by the sha256
*and* the name the tool was run as: ``cc`` and ``gcc`` are often one binary that
prints a different first line under each name. The cache is a JSON file under
``$XDG_CACHE_HOME/buildtape``, replaced atomically; losing it only costs time.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recorder.workspace import hash_file

_MAX_ENTRIES = 20_000
# How long before the moment an entry is made the file must have last changed for the entry
# to be trusted. A file system's clock ticks in whole jiffies (ext4, tmpfs, ramfs before
# multigrain timestamps), seconds (ext3, ext4 with 128-byte inodes, HFS+, many NFS servers)
# or two seconds (FAT): within a tick, a rewrite keeps the stamps the entry compares.
RACY_NS = 2_000_000_000


class HashCache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._files: dict[str, list[Any]] = {}
        self._versions: dict[str, str | None] = {}
        self._dirty = False
        if path is not None:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text())
                if isinstance(data, dict):
                    self._files = dict(data.get("files", {}))
                    # "versions" (keyed by sha256 alone) is an older layout: not read.
                    self._versions = dict(data.get("tool_versions", {}))

    @classmethod
    def for_env(cls, env: Mapping[str, str]) -> HashCache:
        base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(Path(base) / "buildtape" / "hashes.json")

    def sha256(self, path: str) -> tuple[str | None, int] | None:
        """(sha256, size) of a regular file, or None when it is not one."""
        # Taken before the stat and the read: a change after it may not move the stamps.
        now = time.time_ns()
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        cached = self._files.get(path)
        # [size, mtime, ctime, inode, sha256, when the entry was made (ns)]; an entry of the
        # older layout, without that moment, is not trusted either.
        if isinstance(cached, list) and len(cached) == 6 and cached[:4] == key:
            made = cached[5]
            if isinstance(made, int) and max(st.st_mtime_ns, st.st_ctime_ns) + RACY_NS <= made:
                return cached[4], st.st_size
        digest = hash_file(Path(path))
        self._files[path] = [*key, digest, now]
        self._dirty = True
        return digest, st.st_size

    def version(
        self, digest: str | None, run_as: str, compute: Callable[[], str | None]
    ) -> str | None:
        """The version line of the executable with this sha256 run under the name ``run_as``
        (its file name, e.g. ``cc`` or ``gcc``), computed once."""
        if digest is None:
            return compute()
        key = f"{digest} {run_as}"
        if key not in self._versions:
            self._versions[key] = compute()
            self._dirty = True
        return self._versions[key]

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        files = dict(list(self._files.items())[-_MAX_ENTRIES:])
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".partial")
            with os.fdopen(fd, "w") as f:
                json.dump({"files": files, "tool_versions": self._versions}, f)
            os.replace(tmp, self.path)
