"""Reading a file while another process appends lines to it."""

from __future__ import annotations

import os
from pathlib import Path


class LineTail:
    """Returns the complete lines appended since the last call; ``close`` returns the rest.

    Asked about every 50 ms for the whole build, it usually finds nothing new: one
    ``fstat`` says so (a text-mode ``read()`` that returned nothing cost about 50 µs).
    Bytes are split at newlines before they are decoded, so a character that a writer's
    ``write`` cut in two is decoded whole once the rest arrives.
    """

    def __init__(self, path: Path, errors: str = "surrogateescape") -> None:
        path.touch()
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._errors = errors
        self._pos = 0
        self._partial = b""

    def lines(self) -> list[str]:
        size = os.fstat(self._fd).st_size
        if size <= self._pos:
            return []
        chunks = [self._partial]
        while self._pos < size:
            data = os.pread(self._fd, size - self._pos, self._pos)
            if not data:
                break
            chunks.append(data)
            self._pos += len(data)
        complete, newline, self._partial = b"".join(chunks).rpartition(b"\n")
        if not newline:
            return []  # no line ended yet: all of it waits in _partial
        return complete.decode("utf-8", self._errors).split("\n")

    def close(self) -> list[str]:
        """The last lines, including one the writer never ended with a newline."""
        rest = self.lines()
        if self._partial:
            rest.append(self._partial.decode("utf-8", self._errors))
            self._partial = b""
        os.close(self._fd)
        return rest
