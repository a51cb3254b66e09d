"""Chrome's Trace Event Format, for Perfetto, chrome://tracing and the Firefox Profiler.

``{"traceEvents": [...]}`` with complete (``X``) events and metadata (``M``) events that name
each track. Events on one track are strictly nested: a process timeline puts one process
per lane at a time; a stack tree is drawn as a flame chart on a single track, children
inside their parent.
"""

from __future__ import annotations

import json
from typing import Any

from flame.from_tape import Span
from flame.layout import place
from flame.model import StackTree

_PID = 1


def _meta(name: str, tid: int | None, value: str) -> dict[str, Any]:
    event: dict[str, Any] = {"ph": "M", "name": name, "pid": _PID, "args": {"name": value}}
    if tid is not None:
        event["tid"] = tid
    return event


def timeline_events(spans: list[Span], title: str) -> list[dict[str, Any]]:
    events = [_meta("process_name", None, title)]
    for lane in sorted({s.lane for s in spans}):
        events.append(_meta("thread_name", lane + 1, f"lane {lane + 1}"))
    for s in spans:
        p = s.process
        events.append(
            {
                "ph": "X",
                "name": s.label,
                "cat": "process",
                "pid": _PID,
                "tid": s.lane + 1,
                "ts": s.start_us,
                "dur": s.end_us - s.start_us,
                "args": {
                    "pid": p.pid,
                    "argv": p.argv,
                    "exit_code": p.exit_code,
                    "signal": p.signal,
                },
            }
        )
    return events


def flame_chart_events(tree: StackTree) -> list[dict[str, Any]]:
    """The tree laid out left to right on one track; ts and dur are in the tree's unit."""
    events = [
        _meta("process_name", None, tree.title or "stacks"),
        _meta("thread_name", 1, "stacks"),
    ]
    for p in place(tree)[1:]:
        events.append(
            {
                "ph": "X",
                "name": p.frame.name,
                "cat": "stack",
                "pid": _PID,
                "tid": 1,
                # Round both ends, not the duration, so children stay inside their parent.
                "ts": round(p.start),
                "dur": round(p.start + p.width) - round(p.start),
                "args": {"self": p.frame.self_weight, "unit": tree.unit},
            }
        )
    return events


def render_chrome_trace(tree: StackTree, spans: list[Span] | None = None) -> str:
    events = timeline_events(spans, tree.title or "build") if spans else flame_chart_events(tree)
    doc = {"traceEvents": events, "displayTimeUnit": "ms"}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"
