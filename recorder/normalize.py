"""Rewrite what is expected to differ between two runs of one build — the workspace path,
temp file names, pids, timestamps in text — so that diff and the history can match steps
and lines across recordings."""

from __future__ import annotations

import re
import shlex

_TEMP = re.compile(r"/tmp/cc[A-Za-z0-9]{6}\.(s|o|res|ld|c)\b|/tmp/tmp[A-Za-z0-9_]{6,}")
_TIMESTAMP = re.compile(
    r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?\b|\b\d\d:\d\d:\d\d(\.\d+)?\b"
)
_PID = re.compile(r"\b(pid[ =:]?)\d+\b", re.I)


class Normalizer:
    def __init__(self, workspace: str, enabled: bool = True) -> None:
        self.workspace = workspace
        self.enabled = enabled

    def text(self, s: str) -> str:
        if not self.enabled:
            return s
        if self.workspace:
            s = s.replace(self.workspace, "$WORKSPACE")
        s = _TEMP.sub("$TMP", s)
        s = _TIMESTAMP.sub("$TIME", s)
        return _PID.sub(lambda m: m.group(1) + "$PID", s)

    def argv(self, argv: list[str]) -> list[str]:
        return [self.text(a) for a in argv]

    def command_key(self, argv: list[str]) -> str:
        """One string per step command, the same for the same step in another recording."""
        return shlex.join(self.argv(argv))
