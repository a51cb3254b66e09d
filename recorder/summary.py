"""What ``buildtape show`` says about a tape, in one place: ``summarise`` gathers it once,
``TapeSummary.to_json`` is the documented JSON object (docs/cli.md) and
``buildtape.text.tape.show`` its text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recorder.model import Manifest, Process
from recorder.reading import Tape
from recorder.steps import failing, first_error_line, slowest
from recorder.timeline import events_of

# How many of stderr's last lines a failed build's summary shows.
STDERR_TAIL_LINES = 10


def process_view(p: Process) -> dict[str, Any]:
    return {
        "id": p.id,
        "pid": p.pid,
        "parent_id": p.parent_id,
        "argv": p.argv,
        "exe": p.exe,
        "cwd": p.cwd,
        "start_s": round(p.start_s, 6),
        "end_s": None if p.end_s is None else round(p.end_s, 6),
        "duration_s": None if p.duration_s is None else round(p.duration_s, 6),
        "exit_code": p.exit_code,
        "signal": p.signal,
        "reads": p.reads,
        "writes": p.writes,
        "deleted": p.deleted,
    }


def metrics(manifest: Manifest) -> list[dict[str, Any]]:
    return [
        {"name": e.data["name"], "value": e.data["value"], "unit": e.data.get("unit")}
        for e in manifest.events
        if e.kind == "metric"
    ]


@dataclass(frozen=True)
class TapeSummary:
    tape: Tape
    # Every failing step with the process where its failure started.
    failing: list[tuple[Process, Process]]
    # The slowest outermost steps, longest first.
    slowest: list[Process]
    # Metrics the build reported ($BUILDTAPE_EVENTS): name, value, unit.
    metrics: list[dict[str, Any]]
    # A failed build's last lines of stderr, and the first of them that reads as an error.
    stderr_tail: list[str]
    error_line: str | None

    def to_json(self) -> dict[str, Any]:
        """The documented object of ``buildtape show --json``."""
        m = self.tape.manifest
        read = {p for proc in m.processes for p in proc.reads}
        return {
            "format_version": m.format_version,
            "buildtape_version": m.buildtape_version,
            "tape": str(self.tape.path),
            "command": m.argv,
            "cwd": m.cwd,
            "workspace": m.workspace,
            "status": m.status,
            "exit_code": m.exit_code,
            "signal": m.signal,
            "started_at": m.started_at,
            "ended_at": m.ended_at,
            "duration_s": round(m.duration_s, 6),
            "host": m.host.__dict__,
            "git": None if m.git is None else m.git.__dict__,
            "labels": m.labels,
            "tracing": m.tracing.__dict__,
            "sampling": m.sampling.__dict__,
            "env": m.environment.vars,
            "redacted": m.environment.redacted,
            "umask": m.environment.umask,
            "locale": m.environment.locale,
            "tz": m.environment.tz,
            "ulimits": m.environment.ulimits,
            "toolchain": [t.to_dict() for t in m.toolchain],
            "processes": [process_view(p) for p in m.processes],
            "inputs": [
                {"path": e.path, "sha256": e.sha256, "size": e.size, "read": e.path in read}
                for e in m.inputs
            ],
            "outputs": [
                {"path": e.path, "sha256": e.sha256, "size": e.size, "change": e.change}
                for e in m.outputs
            ],
            "external": [e.to_dict() for e in m.external],
            "metrics": self.metrics,
            "events": [e.to_dict() for e in events_of(m)],
            "warnings": [w.to_dict() for w in m.warnings],
            "failing_steps": [{"id": s.id, "origin_id": o.id} for s, o in self.failing],
        }


def stderr_tail(tape: Tape, lines: int = STDERR_TAIL_LINES) -> list[str]:
    text = tape.stream("stderr").decode("utf-8", "replace")
    return text.splitlines()[-lines:]


def summarise(tape: Tape) -> TapeSummary:
    """Everything ``show`` says about ``tape`` (stderr is read only when a step failed)."""
    m = tape.manifest
    fails = failing(m)
    tail = stderr_tail(tape) if fails and m.status != "succeeded" else []
    return TapeSummary(tape, fails, slowest(m), metrics(m), tail, first_error_line(tail))
