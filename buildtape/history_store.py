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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recorder.model import Manifest

# The tape reader and the row builder load only when a tape is indexed: the queries
# (stats, alerts, history) start faster without them.

SCHEMA_VERSION = 3
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


_TABLES = (
    "CREATE TABLE IF NOT EXISTS builds ("
    " tape TEXT PRIMARY KEY, started_at TEXT NOT NULL, status TEXT NOT NULL,"
    " exit_code INTEGER, duration_s REAL NOT NULL, command TEXT NOT NULL,"
    " labels TEXT NOT NULL, processes INTEGER NOT NULL, host TEXT NOT NULL,"
    " workspace TEXT NOT NULL, busy_s REAL NOT NULL DEFAULT 0)",
    "DROP INDEX IF EXISTS builds_started",
    # Builds are read in (started_at, tape) order; the index saves the sort.
    "CREATE INDEX IF NOT EXISTS builds_time ON builds(started_at, tape)",
    # One row per outermost step (see recorder.summary.steps), keyed by normalised argv.
    "CREATE TABLE IF NOT EXISTS steps (tape TEXT NOT NULL, key TEXT NOT NULL,"
    " argv TEXT NOT NULL, start_s REAL NOT NULL, duration_s REAL, exit_code INTEGER,"
    " signal TEXT)",
    "CREATE INDEX IF NOT EXISTS steps_tape ON steps(tape)",
    # Covering: stats groups steps by key and reads their durations from the index alone.
    "CREATE INDEX IF NOT EXISTS steps_key ON steps(key, duration_s)",
    "CREATE TABLE IF NOT EXISTS failures (tape TEXT NOT NULL, key TEXT NOT NULL,"
    " argv TEXT NOT NULL, exit_code INTEGER, signal TEXT, error_line TEXT)",
    "CREATE INDEX IF NOT EXISTS failures_tape ON failures(tape)",
    "CREATE TABLE IF NOT EXISTS metrics (tape TEXT NOT NULL, name TEXT NOT NULL,"
    " value REAL NOT NULL, unit TEXT)",
    "CREATE INDEX IF NOT EXISTS metrics_tape ON metrics(tape)",
    "CREATE INDEX IF NOT EXISTS metrics_name ON metrics(name, unit, value)",
    "CREATE TABLE IF NOT EXISTS events (tape TEXT NOT NULL, t REAL NOT NULL,"
    " kind TEXT NOT NULL, name TEXT, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_tape ON events(tape)",
    "CREATE TABLE IF NOT EXISTS warnings (tape TEXT NOT NULL, kind TEXT NOT NULL,"
    " message TEXT NOT NULL, path TEXT)",
    "CREATE INDEX IF NOT EXISTS warnings_tape ON warnings(tape)",
    # Alerts as they were raised; (tape, rule, subject) is raised once.
    "CREATE TABLE IF NOT EXISTS alerts (raised_at TEXT NOT NULL, tape TEXT NOT NULL,"
    " level TEXT NOT NULL, rule TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL,"
    " PRIMARY KEY (tape, rule, subject))",
)
_CHILD_TABLES = ("steps", "failures", "metrics", "events", "warnings")
# Runs, summed and longest duration per step key over the whole history, kept up to date by
# index and forget: `stats` over all builds reads the slowest steps from here instead of
# grouping every step row (390k rows for 10k builds of a 39-step build: 0.17 s).
_STEP_TOTALS = (
    "CREATE TABLE IF NOT EXISTS step_totals (key TEXT PRIMARY KEY, runs INTEGER NOT NULL,"
    " total REAL NOT NULL, longest REAL NOT NULL)"
)
_FILL_STEP_TOTALS = (
    "INSERT OR REPLACE INTO step_totals SELECT key, count(*), sum(duration_s),"
    " max(duration_s) FROM steps WHERE duration_s IS NOT NULL GROUP BY key"
)


class HistoryStore:
    def __init__(self, home: Path, create: bool = True) -> None:
        """Open the history at ``home``. Without ``create``, a history that does not exist
        reads as empty and nothing is written to disk (queries leave no .buildtape behind)."""
        self.home = home
        self.path = home / "history.sqlite"
        try:
            if create or self.path.exists():
                home.mkdir(parents=True, exist_ok=True)
                target = str(self.path)
            else:
                target = ":memory:"
            self._db = sqlite3.connect(target, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL under WAL keeps the database consistent on any crash and skips one
            # fsync per commit; a power cut can lose the newest rows, and
            # `history --reindex` rebuilds them from the tapes.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open the history at {self.path}: {exc}") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                return  # another process migrated it while we waited for the lock
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"the history at {self.path} was written by a newer buildtape (schema "
                    f"{version}); upgrade buildtape, or use another --home"
                )
            has_builds = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='builds'"
            ).fetchone()
            if has_builds and version < 2:
                self._db.execute("ALTER TABLE builds ADD COLUMN busy_s REAL NOT NULL DEFAULT 0")
            for sql in _TABLES:
                self._db.execute(sql)
            self._db.execute(_STEP_TOTALS)
            if version < 3:
                self._db.execute(_FILL_STEP_TOTALS)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
        # instead of one failing when it upgrades a read lock.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        return self._db

    def index(self, tape: Path, m: Manifest, stderr: bytes | None = None) -> None:
        """Add or replace one tape. ``stderr`` (the build's) gives failures their error line;
        when it is not given and the build failed, it is read from the tape."""
        from buildtape.history_rows import indexed_rows
        from recorder.reading import open_tape
        from recorder.tape import TapeError

        if m.status != "succeeded" and stderr is None:
            try:
                with open_tape(tape) as t:
                    stderr = t.stream("stderr")
            except TapeError:
                stderr = b""
        rows = indexed_rows(m, stderr or b"")
        key = str(tape.resolve())
        build = (
            key, m.started_at, m.status, m.exit_code, m.duration_s, json.dumps(m.argv),
            json.dumps(m.labels, sort_keys=True), len(m.processes), m.host.hostname,
            m.workspace, rows.busy_s,
        )  # fmt: skip
        try:
            with self.transaction():
                self._forget(key)
                self._db.execute("INSERT INTO builds VALUES (?,?,?,?,?,?,?,?,?,?,?)", build)
                self._db.executemany(
                    "INSERT INTO steps VALUES (?,?,?,?,?,?,?)", [(key, *r) for r in rows.steps]
                )
                self._db.executemany(
                    "INSERT INTO step_totals VALUES (?,?,?,?) ON CONFLICT(key) DO UPDATE SET"
                    " runs = runs + excluded.runs, total = total + excluded.total,"
                    " longest = max(longest, excluded.longest)",
                    _totals(rows.steps),
                )
                self._db.executemany(
                    "INSERT INTO failures VALUES (?,?,?,?,?,?)", [(key, *r) for r in rows.failures]
                )
                self._db.executemany(
                    "INSERT INTO metrics VALUES (?,?,?,?)", [(key, *r) for r in rows.metrics]
                )
                self._db.executemany(
                    "INSERT INTO events VALUES (?,?,?,?,?)", [(key, *r) for r in rows.events]
                )
                self._db.executemany(
                    "INSERT INTO warnings VALUES (?,?,?,?)", [(key, *r) for r in rows.warnings]
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot index {tape} into {self.path}: {exc}") from None

    def _forget(self, key: str) -> None:
        gone = self._db.execute(
            "SELECT key, count(*), sum(duration_s) FROM steps WHERE tape = ?"
            " AND duration_s IS NOT NULL GROUP BY key",
            (key,),
        ).fetchall()
        self._db.execute("DELETE FROM builds WHERE tape = ?", (key,))
        for table in _CHILD_TABLES:
            self._db.execute(f"DELETE FROM {table} WHERE tape = ?", (key,))
        if gone:
            self._db.executemany(
                "UPDATE step_totals SET runs = runs - ?, total = total - ? WHERE key = ?",
                [(runs, total, step) for step, runs, total in gone],
            )
            # A longest run cannot be subtracted: look it up again (the covering index on
            # (key, duration_s) answers it directly).
            self._db.executemany(
                "UPDATE step_totals SET longest = coalesce((SELECT max(duration_s) FROM steps"
                " WHERE steps.key = step_totals.key), 0) WHERE key = ?",
                [(step,) for step, _, _ in gone],
            )
            self._db.execute("DELETE FROM step_totals WHERE runs <= 0")

    def forget(self, tapes: list[str]) -> None:
        """Drop tapes from the index (their alerts stay: alert history is kept)."""
        with self.transaction():
            for key in tapes:
                self._forget(key)

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
        from recorder.reading import open_tape
        from recorder.tape import TapeError

        with self.transaction():
            for table in ("builds", "step_totals", *_CHILD_TABLES):
                self._db.execute(f"DELETE FROM {table}")
        indexed, bad = 0, []
        for path in sorted(_tapes(roots)):
            try:
                with open_tape(path) as t:
                    self.index(path, t.manifest)
                indexed += 1
            except TapeError as exc:
                bad.append(f"{path}: {exc}")
        return indexed, bad


def _totals(steps: list[tuple[Any, ...]]) -> list[tuple[str, int, float, float]]:
    """(key, runs, summed, longest duration) of one tape's timed steps."""
    out: dict[str, list[float]] = {}
    for key, _argv, _start, duration, *_ in steps:
        if duration is not None:
            agg = out.setdefault(key, [0, 0.0, 0.0])
            agg[0] += 1
            agg[1] += duration
            agg[2] = max(agg[2], duration)
    return [(k, int(a[0]), a[1], a[2]) for k, a in sorted(out.items())]


def _tapes(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*.tape") if p.is_file())
