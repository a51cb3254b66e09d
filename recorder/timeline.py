"""The typed event stream of a recording, derived from the manifest.

The tape stores the build's own events (``event``, ``metric``, ``span``,
``invalid_event``); everything else here follows from the process table, the outputs,
the warnings and the outcome, so it is computed on read rather than stored twice.
"""

from __future__ import annotations

from recorder.model import Event, Manifest

FINAL_EVENT = {
    "succeeded": "build_completed",
    "failed": "build_failed",
    "interrupted": "build_interrupted",
}


def events_of(m: Manifest, per_process: bool = True) -> list[Event]:
    """Every event of the build in time order (ties keep the order they are listed here);
    without ``per_process``, all but process_started, process_exited and file_written."""
    events: list[Event] = [Event(0.0, "build_started", {"argv": m.argv})]
    for p in m.processes if per_process else ():
        data = {"process": p.id, "pid": p.pid, "parent": p.parent_id}
        events.append(Event(p.start_s, "process_started", data))
    for p in m.processes if per_process else ():
        if p.end_s is not None:
            exited: dict[str, object] = {
                "process": p.id,
                "exit_code": p.exit_code,
                "signal": p.signal,
            }
            events.append(Event(p.end_s, "process_exited", exited))
    written = {e.path for e in m.outputs if e.change != "deleted"}
    seen: set[str] = set()
    for p in m.processes if per_process else ():
        for path in p.writes:
            if path in written and path not in seen:
                seen.add(path)
                events.append(Event(p.start_s, "file_written", {"path": path, "process": p.id}))
    events += m.events
    events += [
        Event(m.duration_s, "warning", {"warning": w.kind, "message": w.message, "path": w.path})
        for w in m.warnings
    ]
    order = {id(e): i for i, e in enumerate(events)}
    events.sort(key=lambda e: (e.t, order[id(e)]))
    # The outcome closes the stream even where a tape's clocks disagree (an older tape, or a
    # crafted one, may hold a process that ends after the build).
    outcome = {"exit_code": m.exit_code, "signal": m.signal, "duration_s": round(m.duration_s, 6)}
    end = max([m.duration_s] + [e.t for e in events])
    events.append(Event(end, FINAL_EVENT[m.status], outcome))
    return events
