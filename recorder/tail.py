"""Reading a file while another process appends lines to it."""

from __future__ import annotations

from pathlib import Path


class LineTail:
    """Returns the complete lines appended since the last call; ``close`` returns the rest."""

    def __init__(self, path: Path, errors: str = "surrogateescape") -> None:
        path.touch()
        self._fh = open(path, encoding="utf-8", errors=errors)  # noqa: SIM115 - closed in close()
        self._partial = ""

    def lines(self) -> list[str]:
        data = self._fh.read()
        if not data:
            return []
        lines = (self._partial + data).split("\n")
        self._partial = lines.pop()
        return lines

    def close(self) -> list[str]:
        """The last lines, including one the writer never ended with a newline."""
        rest = self.lines()
        if self._partial:
            rest.append(self._partial)
            self._partial = ""
        self._fh.close()
        return rest
