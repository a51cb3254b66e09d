"""speedscope's file format (https://www.speedscope.app/file-format-schema.json).

A stack tree becomes a *sampled* profile: one sample per stack, weighted by its self
weight. A process timeline becomes *evented* profiles, one per lane of the timeline, each
opening and closing its processes in time order.
"""

from __future__ import annotations

import json
from typing import Any

from flame.from_tape import Span
from flame.model import StackTree

SCHEMA = "https://www.speedscope.app/file-format-schema.json"
_UNITS = {"microseconds": "microseconds", "samples": "none", "bytes": "bytes"}


class _Frames:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        return self.index.setdefault(name, len(self.index))

    def table(self) -> list[dict[str, str]]:
        return [{"name": name} for name in self.index]


def _sampled(tree: StackTree, frames: _Frames, name: str) -> dict[str, Any]:
    samples: list[list[int]] = []
    weights: list[float] = []
    for stack, weight in tree.stacks():
        samples.append([frames(f) for f in stack])
        weights.append(weight)
    return {
        "type": "sampled",
        "name": name,
        "unit": _UNITS.get(tree.unit, "none"),
        "startValue": 0,
        "endValue": sum(weights),
        "samples": samples,
        "weights": weights,
    }


def _evented(spans: list[Span], frames: _Frames, lane: int) -> dict[str, Any]:
    mine = [s for s in spans if s.lane == lane]
    events: list[dict[str, Any]] = []
    for s in mine:  # one lane never overlaps, so open/close pairs follow each other
        frame = frames(s.label)
        events.append({"type": "O", "frame": frame, "at": s.start_us})
        events.append({"type": "C", "frame": frame, "at": s.end_us})
    return {
        "type": "evented",
        "name": f"lane {lane + 1}",
        "unit": "microseconds",
        "startValue": mine[0].start_us if mine else 0,
        "endValue": max((s.end_us for s in mine), default=0),
        "events": events,
    }


def render_speedscope(
    tree: StackTree, spans: list[Span] | None = None, name: str = "buildtape"
) -> str:
    """The JSON document: the sampled stacks first, then one evented profile per lane."""
    frames = _Frames()
    profiles = [_sampled(tree, frames, tree.title or name)]
    for lane in sorted({s.lane for s in spans or []}):
        profiles.append(_evented(spans or [], frames, lane))
    doc = {
        "$schema": SCHEMA,
        "shared": {"frames": frames.table()},
        "profiles": profiles,
        "name": tree.title or name,
        "activeProfileIndex": 0,
        "exporter": "buildtape",
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"
