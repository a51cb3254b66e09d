"""The history's SQLite store: the one module that speaks SQL.

The index lives in ``<home>/history.sqlite`` (WAL mode, a busy timeout so concurrent
recorders wait instead of failing). The tapes stay where they were written; a tape moved
or deleted by hand is reported as missing, and ``history --reindex`` rebuilds the index
from the tapes on disk. Every query the other history modules need is a named method
here; none of them sees the connection.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from history.errors import HistoryError, HistoryTooNew
from history.options import INTERRUPT_EXIT_CODES, BuildSelection
from history.rows import AlertRow, BuildRecord, IndexedRows, Row, StepRow, WarningRow

SCHEMA_VERSION = 4

_TABLES = (
    "CREATE TABLE IF NOT EXISTS builds ("
    " tape TEXT PRIMARY KEY, started_at TEXT NOT NULL, status TEXT NOT NULL,"
    " exit_code INTEGER, duration_s REAL NOT NULL, command TEXT NOT NULL,"
    " labels TEXT NOT NULL, processes INTEGER NOT NULL, host TEXT NOT NULL,"
    " workspace TEXT NOT NULL, busy_s REAL NOT NULL DEFAULT 0, signal TEXT, branch TEXT)",
    "DROP INDEX IF EXISTS builds_started",
    # Builds are read in (started_at, tape) order; the index saves the sort.
    "CREATE INDEX IF NOT EXISTS builds_time ON builds(started_at, tape)",
    "CREATE INDEX IF NOT EXISTS builds_branch ON builds(branch, started_at)",
    # One row per outermost step (see recorder.steps.outermost_steps), keyed by normalised argv.
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
# add and forget: `stats` over all builds reads the slowest steps from here instead of
# grouping every step row (390k rows for 10k builds of a 39-step build: 0.17 s).
_STEP_TOTALS = (
    "CREATE TABLE IF NOT EXISTS step_totals (key TEXT PRIMARY KEY, runs INTEGER NOT NULL,"
    " total REAL NOT NULL, longest REAL NOT NULL)"
)
# Interrupted builds are counted apart (history.options.INTERRUPT_*): their steps, cut
# short or hung until killed, stay out of the totals.
_FILL_STEP_TOTALS = (
    "INSERT OR REPLACE INTO step_totals SELECT s.key, count(*), sum(s.duration_s),"
    " max(s.duration_s) FROM steps s JOIN builds b ON b.tape = s.tape"
    " WHERE s.duration_s IS NOT NULL AND b.status != 'interrupted' GROUP BY s.key"
)
# Schema 4 counts builds that exited 130 or 143 as interrupted; schema 3 had no signal
# column, so a build killed by a signal is reclassified by `history --reindex`.
_RECLASSIFY_INTERRUPTED = (
    "UPDATE builds SET status = 'interrupted' WHERE status = 'failed' AND exit_code IN "
    f"({', '.join(map(str, INTERRUPT_EXIT_CODES))})"
)


def _insert(row: type[Row], keyed: bool) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)`` from the row class's fields;
    ``keyed`` rows belong to a tape, whose column comes first."""
    cols = ("tape", *row.columns()) if keyed else row.columns()
    return f"INSERT INTO {row.TABLE} ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})"


@dataclass(frozen=True)
class Build:
    """A recording as ``buildtape history`` lists it; ``id`` names it on the command line
    (``#ID``) until the history is rebuilt (``--reindex`` numbers the builds again)."""

    id: int
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


# Not frozen: a frozen dataclass's __init__ costs 3x, and 10k of them are made per query.
@dataclass(slots=True)
class BuildRow:
    """A build as stats, alerts and retention read it, oldest first."""

    tape: str
    started_at: str
    status: str
    exit_code: int | None
    duration_s: float
    busy_s: float
    # Kept as JSON text: decoding 10k of them costs more than the rest of `stats`.
    command_json: str
    labels_json: str
    branch: str | None = None

    @property
    def command(self) -> list[str]:
        out: list[str] = json.loads(self.command_json)
        return out

    @property
    def labels(self) -> dict[str, str]:
        out: dict[str, str] = json.loads(self.labels_json)
        return out


# (started_at, status, duration_s, busy_s): all that the figures of a set of builds need,
# straight from SQLite as tuples (making 10k objects would cost more than the query).
Outcome = tuple[str, str, float, float]
# (step key, exit code, signal, failures, builds, last seen, newest error line, its tape)
FailureGroupRow = tuple[str, int | None, str | None, int, int, str, str | None, str]
# (step key, runs, mean, p50, p95, longest, total) of one step's durations
StepTimesRow = tuple[str, int, float, float | None, float | None, float, float]
# (name, unit, count, mean, sum, min, max) of one metric
MetricSummaryRow = tuple[str, str | None, int, float, float, float, float]

# what -> (columns, SQL over the table joined to its build, JSON-valued columns, order)
_EXPORTS: dict[str, tuple[tuple[str, ...], str, frozenset[str], str]] = {
    "builds": (
        ("tape", "started_at", "status", "exit_code", "duration_s", "busy_s", "processes",
         "host", "workspace", "command", "labels"),
        "SELECT b.tape, b.started_at, b.status, b.exit_code, b.duration_s, b.busy_s,"
        " b.processes, b.host, b.workspace, b.command, b.labels FROM builds b",
        frozenset({"command", "labels"}),
        "b.started_at, b.tape",
    ),
    "steps": (
        ("tape", "started_at", "step", "argv", "start_s", "duration_s", "exit_code", "signal"),
        "SELECT b.tape, b.started_at, s.key, s.argv, s.start_s, s.duration_s, s.exit_code,"
        " s.signal FROM steps s JOIN builds b ON b.tape = s.tape",
        frozenset({"argv"}),
        "b.started_at, b.tape, s.start_s, s.key",
    ),
    "events": (
        ("tape", "started_at", "t", "kind", "name", "data"),
        "SELECT b.tape, b.started_at, e.t, e.kind, e.name, e.data"
        " FROM events e JOIN builds b ON b.tape = e.tape",
        frozenset({"data"}),
        "b.started_at, b.tape, e.t, e.rowid",
    ),
    "metrics": (
        ("tape", "started_at", "name", "value", "unit"),
        "SELECT b.tape, b.started_at, m.name, m.value, m.unit"
        " FROM metrics m JOIN builds b ON b.tape = m.tape",
        frozenset(),
        "b.started_at, b.tape, m.rowid",
    ),
}  # fmt: skip
EXPORTABLE = tuple(sorted(_EXPORTS))


def export_columns(what: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """(columns, JSON-valued columns) of an export."""
    columns, _, json_cols, _ = _EXPORTS[what]
    return columns, json_cols


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
            self._db.create_function("command_line", 1, _command_line, deterministic=True)
            self._migrate()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open the history at {self.path}: {exc}") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                return  # another process migrated it while we waited for the lock
            if version > SCHEMA_VERSION:
                raise HistoryTooNew(
                    f"the history at {self.path} was written by a newer buildtape (schema "
                    f"{version}); upgrade buildtape, or use another --home"
                )
            has_builds = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='builds'"
            ).fetchone()
            if has_builds and version < 2:
                self._db.execute("ALTER TABLE builds ADD COLUMN busy_s REAL NOT NULL DEFAULT 0")
            if has_builds and version < 4:
                self._db.execute("ALTER TABLE builds ADD COLUMN signal TEXT")
                self._db.execute("ALTER TABLE builds ADD COLUMN branch TEXT")
                self._db.execute(_RECLASSIFY_INTERRUPTED)
            for sql in _TABLES:
                self._db.execute(sql)
            self._db.execute(_STEP_TOTALS)
            if version < 4:
                self._db.execute("DELETE FROM step_totals")
                self._db.execute(_FILL_STEP_TOTALS)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
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

    # -- writing -------------------------------------------------------------------------

    def add(self, rows: IndexedRows) -> None:
        """Add one tape's rows, replacing what the history had of that tape."""
        key = rows.build.tape
        try:
            with self._transaction():
                self._forget(key)
                self._db.execute(_insert(BuildRecord, keyed=False), rows.build.values())
                for row_type, items in rows.children():
                    self._db.executemany(
                        _insert(row_type, keyed=True), [(key, *r.values()) for r in items]
                    )
                self._db.executemany(
                    "INSERT INTO step_totals VALUES (?,?,?,?) ON CONFLICT(key) DO UPDATE SET"
                    " runs = runs + excluded.runs, total = total + excluded.total,"
                    " longest = max(longest, excluded.longest)",
                    [] if rows.build.status == "interrupted" else _totals(rows.steps),
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot index {key} into {self.path}: {exc}") from None

    def _forget(self, key: str) -> None:
        gone = self._db.execute(
            "SELECT s.key, count(*), sum(s.duration_s) FROM steps s JOIN builds b"
            " ON b.tape = s.tape WHERE s.tape = ? AND s.duration_s IS NOT NULL"
            " AND b.status != 'interrupted' GROUP BY s.key",
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
                "UPDATE step_totals SET longest = coalesce((SELECT max(s.duration_s) FROM"
                " steps s JOIN builds b ON b.tape = s.tape WHERE s.key = step_totals.key"
                " AND b.status != 'interrupted'), 0) WHERE key = ?",
                [(step,) for step, _, _ in gone],
            )
            self._db.execute("DELETE FROM step_totals WHERE runs <= 0")

    def forget(self, tapes: Iterable[str]) -> None:
        """Drop tapes from the index (their alerts stay: alert history is kept)."""
        with self._transaction():
            for key in tapes:
                self._forget(key)

    def clear_index(self) -> None:
        """Drop every indexed tape (alerts stay), before a reindex."""
        with self._transaction():
            for table in ("builds", "step_totals", *_CHILD_TABLES):
                self._db.execute(f"DELETE FROM {table}")

    def remember_alerts(self, alerts: Sequence[AlertRow]) -> None:
        """Keep alerts; one raised again for the same build, rule and subject is kept once."""
        with self._transaction():
            self._db.executemany(
                _insert(AlertRow, keyed=False).replace("INSERT", "INSERT OR IGNORE", 1),
                [a.values() for a in alerts],
            )

    # -- builds --------------------------------------------------------------------------

    def builds(
        self,
        limit: int | None = None,
        status: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: str | None = None,
    ) -> list[Build]:
        """Recordings, newest first."""
        sql = (
            "SELECT rowid, tape, started_at, status, exit_code, duration_s, command, labels,"
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
            tape_labels = json.loads(row[7])
            if labels and any(tape_labels.get(k) != v for k, v in labels.items()):
                continue
            out.append(
                Build(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]),
                      tape_labels, row[8], row[9], os.path.exists(row[1]))
            )  # fmt: skip
            if limit is not None and len(out) >= limit:
                break
        return out

    def newest_tape(self, skip: int = 0) -> str | None:
        """The tape of the newest build (``skip`` builds back: ``last~N``), or None."""
        row = self._db.execute(
            "SELECT tape FROM builds ORDER BY started_at DESC, tape LIMIT 1 OFFSET ?", (skip,)
        ).fetchone()
        return None if row is None else str(row[0])

    def tape_with_id(self, build_id: int) -> str | None:
        """The tape of the build ``history`` lists with this ID, or None."""
        row = self._db.execute("SELECT tape FROM builds WHERE rowid = ?", (build_id,)).fetchone()
        return None if row is None else str(row[0])

    def build_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM builds").fetchone()[0])

    def build_rows(
        self, since: str | None = None, select: BuildSelection | None = None
    ) -> list[BuildRow]:
        """Builds, oldest first."""
        where, args = _scope(since, select, "builds")
        sql = (
            "SELECT tape, started_at, status, exit_code, duration_s, busy_s, command, labels,"
            f" branch FROM builds WHERE {where} ORDER BY started_at, tape"
        )
        return [BuildRow(*r) for r in self._db.execute(sql, args)]

    def outcomes(
        self, since: str | None = None, select: BuildSelection | None = None
    ) -> list[Outcome]:
        """(started_at, status, duration_s, busy_s) of each build, oldest first."""
        where, args = _scope(since, select, "builds")
        out: list[Outcome] = self._db.execute(
            f"SELECT started_at, status, duration_s, busy_s FROM builds WHERE {where}"
            " ORDER BY started_at, tape",
            args,
        ).fetchall()
        return out

    # -- figures for stats ---------------------------------------------------------------

    def failure_groups(
        self, since: str | None, select: BuildSelection | None = None
    ) -> list[FailureGroupRow]:
        """Failures grouped by step and exit code, most frequent first, each with its
        newest example (interrupted builds left out)."""
        where, args = _scope(since, select, "b", completed=True)
        # SQLite returns the bare columns of the row where max() was found: the newest example.
        rows: list[FailureGroupRow] = self._db.execute(
            "SELECT f.key, f.exit_code, f.signal, count(*), count(DISTINCT f.tape),"
            " max(b.started_at), f.error_line, f.tape FROM failures f"
            f" JOIN builds b ON b.tape = f.tape WHERE {where}"
            " GROUP BY f.key, f.exit_code, f.signal ORDER BY count(*) DESC, f.key",
            args,
        ).fetchall()
        return rows

    def slowest_steps(
        self, since: str | None, n: int, select: BuildSelection | None = None
    ) -> list[StepTimesRow]:
        """The ``n`` steps with the longest mean duration, with their p50 and p95
        (interrupted builds left out)."""
        source, where, args = _window(since, select, "steps")
        if since is None and (select is None or select.everything):
            # The whole history: the running totals the store keeps per step.
            top = self._db.execute(
                "SELECT key, runs, total / runs, longest, total FROM step_totals"
                " ORDER BY total / runs DESC, key LIMIT ?",
                [n],
            ).fetchall()
        else:
            top = self._db.execute(
                "SELECT x.key, count(*), avg(x.duration_s), max(x.duration_s), sum(x.duration_s)"
                f" FROM {source} WHERE {where}"
                " AND x.duration_s IS NOT NULL GROUP BY x.key"
                " ORDER BY avg(x.duration_s) DESC, x.key LIMIT ?",
                [*args, n],
            ).fetchall()
        return [
            (
                key,
                count,
                avg,
                self._step_percentile(key, count, 50, source, where, args),
                self._step_percentile(key, count, 95, source, where, args),
                worst,
                total,
            )
            for key, count, avg, worst, total in top
        ]

    def _step_percentile(
        self, key: str, count: int, q: float, source: str, where: str, args: list[Any]
    ) -> float | None:
        """The q-th percentile of one step's durations (as ``history.stats.percentile``),
        reading only the two ranks it needs: the index on (key, duration_s) hands them
        over already sorted."""
        pos = (count - 1) * q / 100.0
        lo = math.floor(pos)
        pair = [
            r[0]
            for r in self._db.execute(
                f"SELECT x.duration_s FROM {source} WHERE x.key = ? AND {where}"
                " AND x.duration_s IS NOT NULL ORDER BY x.duration_s LIMIT 2 OFFSET ?",
                [key, *args, lo],
            )
        ]
        if not pair:
            return None
        low: float = pair[0]
        high: float = pair[-1]
        return low + (high - low) * (pos - lo)

    def metric_summaries(
        self, since: str | None, select: BuildSelection | None = None
    ) -> list[MetricSummaryRow]:
        """Count, mean, sum, min and max of each metric (by name and unit), interrupted
        builds left out."""
        source, where, args = _window(since, select, "metrics")
        rows: list[MetricSummaryRow] = self._db.execute(
            "SELECT x.name, x.unit, count(*), avg(x.value), sum(x.value), min(x.value),"
            f" max(x.value) FROM {source}"
            f" WHERE {where} GROUP BY x.name, x.unit ORDER BY x.name, x.unit",
            args,
        ).fetchall()
        return rows

    # -- what alerts judge ---------------------------------------------------------------

    def step_seconds(self, tapes: Sequence[str]) -> dict[str, dict[str, float]]:
        """tape -> step key -> total seconds of that step in that build."""
        out: dict[str, dict[str, float]] = {t: {} for t in tapes}
        if not tapes:
            return out
        marks = ",".join("?" * len(tapes))
        for tape, key, total in self._db.execute(
            f"SELECT tape, key, sum(duration_s) FROM steps WHERE tape IN ({marks})"
            " AND duration_s IS NOT NULL GROUP BY tape, key",
            list(tapes),
        ):
            out[tape][key] = total
        return out

    def secret_warnings(self, tape: str) -> list[WarningRow]:
        """The tape's warnings of a secret found in captured text, by path."""
        return [
            WarningRow(*r)
            for r in self._db.execute(
                "SELECT kind, message, path FROM warnings WHERE tape = ?"
                " AND kind LIKE 'secret_in_%' ORDER BY path",
                (tape,),
            )
        ]

    def metric_values(self, tape: str) -> dict[str, list[float]]:
        """name -> the values the tape reported for that metric, in order."""
        values: dict[str, list[float]] = {}
        for name, value in self._db.execute(
            "SELECT name, value FROM metrics WHERE tape = ? ORDER BY rowid", (tape,)
        ):
            values.setdefault(name, []).append(value)
        return values

    def past_alerts(self, since: str | None = None) -> list[AlertRow]:
        """Alerts raised so far, newest first."""
        cols = ", ".join(AlertRow.columns())
        sql = f"SELECT {cols} FROM alerts"
        args: list[Any] = []
        if since:
            sql += " WHERE raised_at >= ?"
            args.append(since)
        sql += " ORDER BY raised_at DESC, tape, rule, subject"
        return [AlertRow(*r) for r in self._db.execute(sql, args)]

    def row_counts(self) -> dict[str, int]:
        """table -> rows, of every table of the index."""
        tables = ("builds", "step_totals", *_CHILD_TABLES, "alerts")
        return {t: self._db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    # -- export --------------------------------------------------------------------------

    def export_rows(
        self,
        what: str,
        since: str | None = None,
        kind: str | None = None,
        tape: str | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of one export (see ``EXPORTABLE``) oldest first, JSON-valued columns
        decoded."""
        columns, sql, json_cols, order = _EXPORTS[what]
        where, args = [], []
        if since:
            where.append("b.started_at >= ?")
            args.append(since)
        if kind:
            where.append("e.kind = ?")
            args.append(kind)
        if tape:
            where.append("b.tape = ?")
            args.append(tape)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order}"
        out = []
        for raw in self._db.execute(sql, args):
            row = dict(zip(columns, raw, strict=True))
            for col in json_cols:
                row[col] = json.loads(row[col])
            out.append(row)
        return out


def _command_line(command_json: str) -> str:
    """A build's command as ``history`` shows it (what ``--command`` globs match)."""
    return shlex.join(json.loads(command_json))


def _scope(
    since: str | None, select: BuildSelection | None, alias: str, completed: bool = False
) -> tuple[str, list[Any]]:
    """WHERE (over the builds table, as ``alias``) for the builds since ``since`` that
    ``select`` selects; ``completed`` leaves interrupted builds out."""
    where, args = ["1"], []
    if since:
        where.append(f"{alias}.started_at >= ?")
        args.append(since)
    if completed:
        where.append(f"{alias}.status != 'interrupted'")
    if select is not None:
        if select.command is not None:
            where.append(f"command_line({alias}.command) GLOB ?")
            args.append(select.command)
        if select.branch is not None:
            where.append(f"{alias}.branch = ?")
            args.append(select.branch)
        for key, value in select.labels:
            # json_each, not a JSON path: a label's key may hold any character.
            where.append(
                f"EXISTS (SELECT 1 FROM json_each({alias}.labels) l"
                " WHERE l.key = ? AND l.value = ?)"
            )
            args += [key, value]
    return " AND ".join(where), args


def _window(
    since: str | None, select: BuildSelection | None, table: str
) -> tuple[str, str, list[Any]]:
    """FROM and WHERE for rows of ``table`` (aliased x) of the completed builds since
    ``since`` that ``select`` selects."""
    where, args = _scope(since, select, "b", completed=True)
    return f"{table} x JOIN builds b ON b.tape = x.tape", where, args


def _totals(steps: Sequence[StepRow]) -> list[tuple[str, int, float, float]]:
    """(key, runs, summed, longest duration) of one tape's timed steps."""
    out: dict[str, list[float]] = {}
    for s in steps:
        if s.duration_s is not None:
            agg = out.setdefault(s.key, [0, 0.0, 0.0])
            agg[0] += 1
            agg[1] += s.duration_s
            agg[2] = max(agg[2], s.duration_s)
    return [(k, int(a[0]), a[1], a[2]) for k, a in sorted(out.items())]
