"""What the history keeps of one tape: its steps, failures, metrics, events and warnings,
as plain rows. Computed from the manifest alone (plus the build's stderr for error lines),
so indexing never reads a blob of the tape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from recorder.first_error import first_error, step_names
from recorder.model import Manifest, Process
from recorder.normalize import Normalizer
from recorder.summary import failing, steps
from recorder.timeline import timeline


@dataclass
class Rows:
    busy_s: float = 0.0
    # (key, argv json, start_s, duration_s, exit_code, signal)
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    # (key, argv json, exit_code, signal, error_line)
    failures: list[tuple[Any, ...]] = field(default_factory=list)
    # (name, value, unit)
    metrics: list[tuple[Any, ...]] = field(default_factory=list)
    # (t, kind, name, data json)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    # (kind, message, path)
    warnings: list[tuple[Any, ...]] = field(default_factory=list)


def outermost_steps(m: Manifest) -> list[Process]:
    """Steps that are not inside another step: the cc, not its cc1."""
    candidates = steps(m)
    ids = {p.id for p in candidates}
    return [p for p in candidates if p.parent_id not in ids]


def error_line_for(step: Process, lines: list[str]) -> str | None:
    """The first error line that names one of the step's files, else the first one at all."""
    names = step_names(step.argv, (f for f in (*step.reads, *step.writes) if f[:1] != "/"))
    found = first_error(lines, names)
    return None if found is None else lines[found.index].strip()


def indexed_rows(m: Manifest, stderr: bytes) -> Rows:
    norm = Normalizer(m.workspace)
    rows = Rows()
    for p in sorted(outermost_steps(m), key=lambda p: (p.start_s, p.id)):
        rows.steps.append(
            (norm.command_key(p.argv), json.dumps(p.argv), round(p.start_s, 6),
             None if p.duration_s is None else round(p.duration_s, 6), p.exit_code, p.signal)
        )  # fmt: skip
        rows.busy_s += p.duration_s or 0.0
    lines = stderr.decode("utf-8", "replace").splitlines() if stderr else []
    for step, origin in failing(m):
        exit_code = step.exit_code if step.exit_code not in (0, None) else origin.exit_code
        rows.failures.append(
            (norm.command_key(step.argv), json.dumps(step.argv), exit_code,
             step.signal or origin.signal, error_line_for(step, lines))
        )  # fmt: skip
    # Per-process events stay in the tape (`buildtape events TAPE` reads them); the
    # history keeps what a person queries across builds.
    for e in timeline(m, per_process=False):
        if e.kind == "metric":
            rows.metrics.append((e.data["name"], e.data["value"], e.data.get("unit")))
        name = e.data.get("name")
        rows.events.append(
            (round(e.t, 6), e.kind, name if isinstance(name, str) else None,
             json.dumps(e.to_dict(), sort_keys=True))
        )  # fmt: skip
    rows.warnings = [(w.kind, w.message, w.path) for w in m.warnings]
    rows.busy_s = round(rows.busy_s, 6)
    return rows
