"""The environments the interposer saved, read while the build runs.

Every distinct environment of the build is one file (``$BUILDTAPE_SAVEDIR/env/<tag>``).
A compile step's tools each have one of their own (gcc passes ``COLLECT_GCC_OPTIONS``,
which names the source), so a 600-process build leaves about 600 of them: read after the
build, they were a wait of their own before the tape could be written. Read as their
processes start instead, only a size check is left for the end.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path

from recorder.interposer import read_environment


class EnvironmentFiles:
    """Saved environments by tag, each read once, and trusted only while its size holds."""

    def __init__(self, save_dir: Path, shim: str | None) -> None:
        self._dir = save_dir
        self._shim = shim
        self._read: dict[str, tuple[int, dict[str, str] | None]] = {}
        self._seen = 0

    def prefetch(self, tags: Mapping[int, str]) -> None:
        """Read the environments of processes that started since the last call.

        ``tags`` is the interposer's pid -> tag table, which only grows at its end while
        the build runs: what was looked at before is skipped without being walked again.
        """
        for tag in itertools.islice(tags.values(), self._seen, None):
            if tag not in self._read:
                self._read[tag] = self._load(tag)
        self._seen = len(tags)

    def get(self, tag: str) -> dict[str, str] | None:
        """The environment saved under ``tag`` (a copy), or None when there is none.

        A process with the same environment as one still writing it may have started
        first: what was read then may be short, so its size is checked again now.
        """
        read = self._read.get(tag)
        if read is None or read[0] != self._size(tag):
            read = self._read[tag] = self._load(tag)
        env = read[1]
        return None if env is None else dict(env)

    def _size(self, tag: str) -> int:
        try:
            return os.stat(self._dir / "env" / tag).st_size
        except OSError:
            return -1

    def _load(self, tag: str) -> tuple[int, dict[str, str] | None]:
        size = self._size(tag)
        return size, read_environment(self._dir, tag, self._shim)
