"""The history: an SQLite index of every recorded tape, safe for many recorders at once.

The index lives in ``<home>/history.sqlite`` (WAL mode, a busy timeout so concurrent
recorders wait instead of failing). ``home`` is ``$BUILDTAPE_HOME``, else ``.buildtape``
in the workspace. The tapes stay where they were written; a tape moved or deleted by
hand is reported as missing, and ``reindex`` rebuilds the index from the tapes on disk.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from recorder.model import Manifest
from recorder.reading import open_tape
from recorder.tape import TapeError

HOME_VAR = "BUILDTAPE_HOME"
SCHEMA_VERSION = 1
_SINCE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class HistoryError(Exception):
    """The history cannot be read or written; the message says why."""


@dataclass(frozen=True)
class Build:
    tape: str
    started_at: str
    status: str
    exit_code: int | None
    duration_s: float
    command: list[str]
    labels: dict[str, str]
    processes: int
    host: str
    present: bool

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def home_for(workspace: Path, env: Mapping[str, str]) -> Path:
    return Path(env[HOME_VAR]) if env.get(HOME_VAR) else workspace / ".buildtape"


def parse_since(text: str, now: datetime | None = None) -> str:
    """``7d``, ``12h``, ``30m`` (or an ISO 8601 time) -> the ISO time it means."""
    m = _SINCE.match(text.strip())
    now = now or datetime.now(timezone.utc)
    if m:
        delta = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        return (now - delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HistoryError(
            f"--since {text!r} is neither like 7d, 12h, 30m nor an ISO time"
        ) from None
    return text


class HistoryStore:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "history.sqlite"
        try:
            home.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS builds ("
                " tape TEXT PRIMARY KEY, started_at TEXT NOT NULL, status TEXT NOT NULL,"
                " exit_code INTEGER, duration_s REAL NOT NULL, command TEXT NOT NULL,"
                " labels TEXT NOT NULL, processes INTEGER NOT NULL, host TEXT NOT NULL,"
                " workspace TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS builds_started ON builds(started_at)")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open the history at {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def index(self, tape: Path, m: Manifest) -> None:
        row = (
            str(tape.resolve()), m.started_at, m.status, m.exit_code, m.duration_s,
            json.dumps(m.argv), json.dumps(m.labels, sort_keys=True), len(m.processes),
            m.host.hostname, m.workspace,
        )  # fmt: skip
        try:
            self._db.execute("INSERT OR REPLACE INTO builds VALUES (?,?,?,?,?,?,?,?,?,?)", row)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot index {tape} into {self.path}: {exc}") from None

    def builds(
        self,
        limit: int | None = None,
        status: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: str | None = None,
    ) -> list[Build]:
        """Recordings, newest first."""
        sql = (
            "SELECT tape, started_at, status, exit_code, duration_s, command, labels,"
            " processes, host FROM builds"
        )
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if since:
            where.append("started_at >= ?")
            args.append(since)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, tape"
        out = []
        for row in self._db.execute(sql, args):
            tape_labels = json.loads(row[6])
            if labels and any(tape_labels.get(k) != v for k, v in labels.items()):
                continue
            out.append(
                Build(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), tape_labels,
                      row[7], row[8], os.path.exists(row[0]))
            )  # fmt: skip
            if limit is not None and len(out) >= limit:
                break
        return out

    def reindex(self, roots: list[Path]) -> tuple[int, list[str]]:
        """Rebuild the index from the tapes under ``roots``; (indexed, unreadable)."""
        self._db.execute("DELETE FROM builds")
        indexed, bad = 0, []
        for path in sorted(_tapes(roots)):
            try:
                with open_tape(path) as t:
                    self.index(path, t.manifest)
                indexed += 1
            except TapeError as exc:
                bad.append(f"{path}: {exc}")
        return indexed, bad


def _tapes(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*.tape") if p.is_file())
