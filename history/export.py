"""Rows of the history for ``buildtape export`` and ``buildtape events``, one shape for CSV
and JSON: in CSV, lists and objects are JSON text, so every row parses back the same."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from history.options import EventQuery, ExportOptions
from history.store import EXPORTABLE, HistoryStore, export_columns
from recorder.tape import Tape
from recorder.timeline import events_of

__all__ = ["EXPORTABLE", "EventQuery", "ExportOptions", "rows", "to_csv", "to_json"]


def rows(store: HistoryStore, options: ExportOptions) -> list[dict[str, Any]]:
    """Rows oldest first, with JSON-valued columns decoded."""
    return store.export_rows(options.what, options.since)


def to_csv(what: str, data: list[dict[str, Any]]) -> str:
    columns, json_cols = export_columns(what)
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


def history_events(store: HistoryStore, query: EventQuery) -> list[dict[str, Any]]:
    """Events kept in the history: the newest builds first, each build's in time order."""
    found = store.export_rows("events", query.since, query.kind)
    found.sort(key=lambda r: r["started_at"], reverse=True)
    return [
        {"tape": r["tape"], "started_at": r["started_at"], **r["data"]}
        for r in found[: query.count]
    ]


def tape_events(tape: Tape, query: EventQuery) -> list[dict[str, Any]]:
    """Every event of one tape (the per-process ones too), in time order."""
    return [
        {"tape": str(tape.path), "started_at": tape.manifest.started_at, **e.to_dict()}
        for e in events_of(tape.manifest)
        if query.kind is None or e.kind == query.kind
    ][: query.count]
