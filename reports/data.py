"""What the HTML pages show, as plain data: compact enough that a tape of 5k processes and
100k stacks stays a few MB of JSON, and ordered deterministically so the same tape gives
the same bytes."""

from __future__ import annotations

import json
import os
from typing import Any

from flame.from_tape import Samples, process_spans, process_stacks
from flame.model import Frame, StackTree
from recorder.ansi import plain, strip_sgr
from recorder.first_error import FirstError, first_error
from recorder.model import REDACTED, Manifest, Process
from recorder.steps import error_for, failing, outermost_steps, steps
from recorder.tape import Tape
from recorder.timeline import events_of
from reports.critical import critical_path, parallelism

# Per process, the panel lists this many files read and written ("and N more" after).
MAX_FILES_PER_PROCESS = 40
# Streams longer than this many lines show their tail.
MAX_STREAM_LINES = 5000
MAX_HEAVIEST = 100
_CUSTOM_KINDS = frozenset({"event", "metric", "span", "invalid_event", "warning"})


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 6)


def _w(x: float) -> float | int:
    return int(x) if x.is_integer() else round(x, 6)


def flame_payload(tree: StackTree) -> dict[str, Any]:
    """The tree in depth-first pre-order, children by name, as parallel arrays, compact
    enough for 600k frames in a few MB:

    - ``step``: depth of each frame minus the previous frame's depth minus one (0 for the
      first child of the previous frame, the common case; negative going back up);
    - ``name``: an index into ``names``, ordered by use so frequent names are short;
    - ``self`` (and ``bself`` for the base of a differential tree): self weights. Totals
      are the sums over subtrees, which the viewer adds up itself;
    - ``rest``, only for a tree whose narrowest frames were left out (``flame.drawable``):
      the weight of each frame's children that are not in the tree, so widths stay true.
    """
    order: list[Frame] = []
    depths: list[int] = []
    stack: list[tuple[Frame, int]] = [(tree.root, 0)]
    while stack:
        node, d = stack.pop()
        order.append(node)
        depths.append(d)
        if node.children:
            kids = sorted(node.children.values(), key=lambda f: f.name, reverse=True)
            stack += [(k, d + 1) for k in kids]
    uses: dict[str, int] = {}
    heaviest: dict[str, list[float]] = {}
    for node in order:
        uses[node.name] = uses.get(node.name, 0) + 1
        if node is not tree.root and node.self_weight:
            agg = heaviest.setdefault(node.name, [0.0, 0.0])
            agg[0] += node.self_weight
    for node in order[1:]:
        weights = heaviest.get(node.name)
        if weights is not None:
            weights[1] += node.total
    names = sorted(uses, key=lambda n: (-uses[n], n))
    index = {n: i for i, n in enumerate(names)}
    prev = -1
    steps = []
    for d in depths:
        steps.append(d - prev - 1)
        prev = d
    top = sorted(heaviest.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_HEAVIEST]
    out: dict[str, Any] = {
        "unit": tree.unit,
        "title": tree.title,
        "differential": tree.differential,
        "names": names,
        "name": [index[n.name] for n in order],
        "step": steps,
        "self": [_w(n.self_weight) for n in order],
        "heaviest": [[n, _w(s), _w(t)] for n, (s, t) in top],
    }
    if tree.differential:
        out["bself"] = [_w(n.base_self) for n in order]
    rest = [n.total - n.self_weight - sum(c.total for c in n.children.values()) for n in order]
    if any(abs(r) > 1e-9 * (tree.total or 1.0) for r in rest):
        out["rest"] = [_w(max(r, 0.0)) for r in rest]
    return out


def tape_tree(tape: Tape) -> StackTree:
    digest = tape.manifest.sampling.samples_blob
    samples = Samples.from_json(tape.blob(digest)) if digest else None
    return process_stacks(tape.manifest, samples)


def _tail(text: str) -> tuple[list[str], int]:
    lines = text.splitlines()
    cut = max(0, len(lines) - MAX_STREAM_LINES)
    return lines[cut:], cut


StreamTails = dict[str, tuple[list[str], int]]


def stream_tails(tape: Tape) -> StreamTails:
    """Per stream, its last ``MAX_STREAM_LINES`` lines as recorded (colour and all), and
    how many earlier lines were left out."""
    return {
        name: _tail(tape.stream(name).decode("utf-8", "replace")) for name in ("stderr", "stdout")
    }


def _failure(step: Process | None, origin: Process | None, m: Manifest,
             found: FirstError | None, lines: list[str]) -> dict[str, Any]:  # fmt: skip
    """A failing step (or the build, when no step failed) with its first error."""
    who = step or origin
    exit_code = m.exit_code if who is None else who.exit_code
    if step is not None and origin is not None and step.exit_code in (0, None):
        exit_code = origin.exit_code
    return {
        "id": None if step is None else step.id,
        "origin": None if origin is None else origin.id,
        "argv": m.argv if step is None else step.argv,
        "cwd": m.cwd if step is None else step.cwd,
        "exit_code": exit_code,
        "signal": m.signal if step is None else step.signal or (origin.signal if origin else None),
        "error_line": None if found is None else strip_sgr(lines[found.index]).strip(),
        "error_index": None if found is None else found.index,
    }


def report_payload(tape: Tape, tails: StreamTails | None = None) -> dict[str, Any]:
    """The report's data. Stream lines are plain text (``recorder.ansi.plain``): the page
    draws their colours from ``tails`` itself (``reports.render``)."""
    m = tape.manifest
    tails = tails if tails is not None else stream_tails(tape)
    paths: dict[str, int] = {}

    def pid(path: str) -> int:
        return paths.setdefault(path, len(paths))

    spans = process_spans(m)
    lane = {s.process.id: s.lane for s in spans}
    label = {s.process.id: s.label for s in spans}
    step_list = outermost_steps(m)
    crit = critical_path(m, step_list)
    par = parallelism(m)
    cols: dict[str, list[Any]] = {
        k: []
        for k in ("id", "parent", "start", "end", "exit", "signal", "lane", "label", "argv",
                  "cwd", "reads", "writes", "nreads", "nwrites", "step")
    }  # fmt: skip
    step_ids = {p.id for p in steps(m)}
    for p in sorted(m.processes, key=lambda p: (p.start_s, p.id)):
        cols["id"].append(p.id)
        cols["parent"].append(p.parent_id)
        cols["start"].append(round(p.start_s, 6))
        cols["end"].append(round(p.end_s if p.end_s is not None else m.duration_s, 6))
        cols["exit"].append(p.exit_code)
        cols["signal"].append(p.signal)
        cols["lane"].append(lane[p.id])
        cols["label"].append(label[p.id])
        cols["argv"].append(p.argv)
        cols["cwd"].append(pid(p.cwd))
        cols["reads"].append([pid(r) for r in sorted(p.reads)[:MAX_FILES_PER_PROCESS]])
        cols["writes"].append([pid(w) for w in sorted(p.writes)[:MAX_FILES_PER_PROCESS]])
        cols["nreads"].append(len(p.reads))
        cols["nwrites"].append(len(p.writes))
        cols["step"].append(p.id in step_ids)

    stderr_lines, stderr_cut = tails["stderr"]
    stdout_lines, stdout_cut = tails["stdout"]
    failures = [
        _failure(step, origin, m, error_for(step, stderr_lines), stderr_lines)
        for step, origin in failing(m)
    ]
    if m.status != "succeeded" and not failures:
        failures.append(_failure(None, None, m, first_error(stderr_lines), stderr_lines))
    # A build that succeeded expected the failures of its steps (configure's probes):
    # they are listed after the timeline, collapsed, not as why it failed.
    expected = failures if m.status == "succeeded" else []
    failures = [] if m.status == "succeeded" else failures

    read = {r for p in m.processes for r in p.reads}
    custom = [
        e for e in events_of(m) if e.kind in ("event", "metric", "span", "invalid_event", "warning")
    ]
    slow = sorted(
        (p for p in step_list if p.duration_s is not None),
        key=lambda p: (-(p.duration_s or 0.0), p.id),
    )
    return {
        "build": {
            "command": m.argv,
            "status": m.status,
            "exit_code": m.exit_code,
            "signal": m.signal,
            "started_at": m.started_at,
            "duration_s": round(m.duration_s, 6),
            "host": {
                "hostname": m.host.hostname,
                "cpus": m.host.cpus,
                "os": m.host.os,
                "arch": m.host.arch,
            },
            "git": None
            if m.git is None
            else {"commit": m.git.commit, "branch": m.git.branch, "dirty": len(m.git.dirty)},
            "labels": dict(sorted(m.labels.items())),
            "tape": os.path.basename(str(tape.path)),
            "processes": len(m.processes),
            **_fidelity(m),
        },
        "paths": list(paths),
        "processes": cols,
        "critical": [p.id for p in crit],
        "critical_s": round(sum(p.duration_s or 0.0 for p in crit), 6),
        "parallelism": {
            "points": par.points,
            "peak": par.peak,
            "average": round(par.average, 3),
            "cpus": m.host.cpus,
        },
        "failures": failures,
        "expected_failures": expected,
        "slowest": [[p.id, label[p.id], round(p.duration_s or 0.0, 6), p.exit_code] for p in slow],
        "inputs": [[e.path, e.size, e.sha256, e.path in read] for e in m.inputs],
        "outputs": [[e.path, e.size, e.sha256, e.change] for e in m.outputs],
        "env": [[k, v, v == REDACTED] for k, v in sorted(m.environment.vars.items())],
        "events": [
            [
                round(e.t, 6),
                e.kind,
                e.data.get("name") or e.data.get("warning") or "",
                json.dumps({k: v for k, v in e.data.items() if k != "name"}, sort_keys=True),
            ]
            for e in custom
        ],
        "stderr": [plain(x) for x in stderr_lines],
        "stderr_cut": stderr_cut,
        "stdout": [plain(x) for x in stdout_lines],
        "stdout_cut": stdout_cut,
        "flame": flame_payload(tape_tree(tape)),
    }


# Warnings that say what the recording could not see, shown where the reader looks first.
_FIDELITY_KINDS = ("static_executables", "prebuild_content_lost")


def _fidelity(m: Manifest) -> dict[str, list[str]]:
    notes = [w.message for w in m.warnings if w.kind in _FIDELITY_KINDS]
    return {"fidelity": notes} if notes else {}
