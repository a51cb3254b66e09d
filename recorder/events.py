"""Events that build steps append, as JSON lines, to the file named by ``$BUILDTAPE_EVENTS``.

One object per line: ``{"kind": "event", "name": ..., "data": {...}}``,
``{"kind": "metric", "name": ..., "value": number, "unit": ...}`` or
``{"kind": "span", "name": ..., "start": unix_s, "end": unix_s}``; ``ts`` (unix seconds)
is optional on every kind. A line that is not one of these becomes an ``invalid_event``
carrying the reason, so a buggy step never breaks a recording.
"""

from __future__ import annotations

import json
import math
from typing import Any

from recorder.model import Event

MAX_LINE = 64 * 1024
_KINDS = ("event", "metric", "span")


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def parse_event_line(line: str, lineno: int, arrived_s: float, wall_start: float) -> Event:
    """Parse one line; ``arrived_s`` (build-relative) stands in for a missing ``ts``."""

    def invalid(reason: str) -> Event:
        return Event(
            arrived_s, "invalid_event", {"line": lineno, "reason": reason, "text": line[:200]}
        )

    if len(line) > MAX_LINE:
        return invalid(f"line is longer than {MAX_LINE} bytes")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return invalid(f"not JSON: {exc.msg}")
    if not isinstance(obj, dict):
        return invalid("not a JSON object")
    kind = obj.get("kind")
    if kind not in _KINDS:
        return invalid(f"kind must be one of {', '.join(_KINDS)}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return invalid("name must be a non-empty string")
    t = arrived_s
    if "ts" in obj:
        ts = _number(obj["ts"])
        if ts is None:
            return invalid("ts must be a number (unix seconds)")
        t = ts - wall_start
    data: dict[str, Any] = {"name": name}
    if kind == "event":
        extra = obj.get("data", {})
        if not isinstance(extra, dict):
            return invalid("data must be an object")
        data["data"] = extra
    elif kind == "metric":
        value = _number(obj.get("value"))
        if value is None:
            return invalid("metric value must be a finite number")
        data["value"] = value
        unit = obj.get("unit")
        if unit is not None:
            if not isinstance(unit, str):
                return invalid("unit must be a string")
            data["unit"] = unit
    else:
        start, end = _number(obj.get("start")), _number(obj.get("end"))
        if start is None or end is None:
            return invalid("span start and end must be numbers (unix seconds)")
        if end < start:
            return invalid("span ends before it starts")
        data["start_s"] = round(start - wall_start, 6)
        data["end_s"] = round(end - wall_start, 6)
        t = start - wall_start
        for key in ("parent", "pid"):
            if key in obj:
                data[key] = obj[key]
    return Event(t, kind, data)
