"""What ``buildtape show`` says about a tape, in one place: ``summarise`` gathers it once,
``TapeSummary.to_json`` is the documented JSON object (docs/cli.md) and
``buildtape.text.tape.show`` its text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from recorder.ansi import strip_sgr
from recorder.first_error import FirstError, first_error, step_names
from recorder.model import Manifest, Process
from recorder.steps import failing, first_error_line, slowest
from recorder.tape import Tape
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


@dataclass(frozen=True)
class Metric:
    """One metric the build reported ($BUILDTAPE_EVENTS, ``buildtape.metric``)."""

    name: str
    value: float
    unit: str | None


def metrics(manifest: Manifest) -> list[Metric]:
    return [
        Metric(e.data["name"], e.data["value"], e.data.get("unit"))
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
    # Metrics the build reported, in the order it reported them.
    metrics: list[Metric]
    # A failed build's last lines of stderr, and the first of them that reads as an error.
    stderr_tail: list[str]
    error_line: str | None
    # Each failing step's first error (recorder/first_error.py), beside ``failing``.
    step_errors: list[str | None] = field(default_factory=list)

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
            "metrics": [asdict(x) for x in self.metrics],
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
    failed = fails and m.status != "succeeded"
    tail = stderr_tail(tape) if failed else []
    errors = [step_first_error(tape, s, o) for s, o in fails] if failed else []
    lines = [e.line for e in errors if e is not None]
    # The tail marks the failing step's own error when it shows, else the first it has.
    first = next(
        (x for x in tail if lines and strip_sgr(x).strip() == lines[0]), first_error_line(tail)
    )
    step_errors = [None if e is None else e.line for e in errors]
    return TapeSummary(tape, fails, slowest(m), metrics(m), tail, first, step_errors)


# A chunk is read a moment after the step wrote it.
_READ_LAG_S = 0.05


def step_lines(tape: Tape, step: Process) -> list[str]:
    """Lines of stdout and stderr that were written while ``step`` ran, in the order seen."""
    m = tape.manifest
    data = {name: tape.stream(name) for name in ("stdout", "stderr")}
    offset = {"stdout": 0, "stderr": 0}
    end = (step.end_s if step.end_s is not None else m.duration_s) + _READ_LAG_S
    pending = {"stdout": b"", "stderr": b""}
    out: list[str] = []
    for c in m.streams.chunks:
        piece = data[c.stream][offset[c.stream] : offset[c.stream] + c.size]
        offset[c.stream] += c.size
        if not step.start_s <= c.t <= end:
            continue
        text = pending[c.stream] + piece
        *whole, pending[c.stream] = text.split(b"\n")
        out += [line.decode("utf-8", "replace") for line in whole]
    out += [rest.decode("utf-8", "replace") for rest in pending.values() if rest]
    return out


def step_first_error(tape: Tape, step: Process, origin: Process | None = None) -> FirstError | None:
    """The failing step's first error: from the lines written while it ran, preferring those
    that name its files; else the first line of the whole stderr that names them."""
    files = [f for p in (step, origin) if p is not None for f in (*p.reads, *p.writes)]
    names = step_names(step.argv, (f for f in files if not f.startswith("/")))
    if origin is not None:
        names |= step_names(origin.argv)
    found = first_error(step_lines(tape, step), names)
    if found is not None:
        return found
    stderr = tape.stream("stderr").decode("utf-8", "replace").splitlines()
    found = first_error(stderr, names)
    if found is not None and names and any(n in found.line for n in names):
        return found
    return None
