"""Rows of the history for ``buildtape export`` and ``buildtape events``, one shape for CSV
and JSON: in CSV, lists and objects are JSON text, so every row parses back the same."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from buildtape.history_store import HistoryStore

# what -> (columns, SQL over the table joined to its build, JSON-valued columns)
QUERIES: dict[str, tuple[tuple[str, ...], str, frozenset[str]]] = {
    "builds": (
        ("tape", "started_at", "status", "exit_code", "duration_s", "busy_s", "processes",
         "host", "workspace", "command", "labels"),
        "SELECT b.tape, b.started_at, b.status, b.exit_code, b.duration_s, b.busy_s,"
        " b.processes, b.host, b.workspace, b.command, b.labels FROM builds b",
        frozenset({"command", "labels"}),
    ),
    "steps": (
        ("tape", "started_at", "step", "argv", "start_s", "duration_s", "exit_code", "signal"),
        "SELECT b.tape, b.started_at, s.key, s.argv, s.start_s, s.duration_s, s.exit_code,"
        " s.signal FROM steps s JOIN builds b ON b.tape = s.tape",
        frozenset({"argv"}),
    ),
    "events": (
        ("tape", "started_at", "t", "kind", "name", "data"),
        "SELECT b.tape, b.started_at, e.t, e.kind, e.name, e.data"
        " FROM events e JOIN builds b ON b.tape = e.tape",
        frozenset({"data"}),
    ),
    "metrics": (
        ("tape", "started_at", "name", "value", "unit"),
        "SELECT b.tape, b.started_at, m.name, m.value, m.unit"
        " FROM metrics m JOIN builds b ON b.tape = m.tape",
        frozenset(),
    ),
}  # fmt: skip
_ORDER = {
    "builds": "b.started_at, b.tape",
    "steps": "b.started_at, b.tape, s.start_s, s.key",
    "events": "b.started_at, b.tape, e.t, e.rowid",
    "metrics": "b.started_at, b.tape, m.rowid",
}


def rows(
    store: HistoryStore,
    what: str,
    since: str | None = None,
    kind: str | None = None,
    tape: str | None = None,
) -> list[dict[str, Any]]:
    """Rows oldest first, with JSON-valued columns decoded."""
    columns, sql, json_cols = QUERIES[what]
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
    sql += f" ORDER BY {_ORDER[what]}"
    out = []
    for raw in store.db.execute(sql, args):
        row = dict(zip(columns, raw, strict=True))
        for col in json_cols:
            row[col] = json.loads(row[col])
        out.append(row)
    return out


def to_csv(what: str, data: list[dict[str, Any]]) -> str:
    columns, _, json_cols = QUERIES[what]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in data:
        writer.writerow(
            {
                k: json.dumps(v, sort_keys=True) if k in json_cols else ("" if v is None else v)
                for k, v in row.items()
            }
        )
    return buf.getvalue()


def to_json(data: list[dict[str, Any]]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
