"""One tape for people: ``show`` (what a person reads in ten seconds), ``ps`` and
``extract``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from buildtape.text.units import human_size, seconds, short_argv
from recorder.model import Process
from recorder.summary import TapeSummary

if TYPE_CHECKING:
    from replay.extract import Extracted


def _status(p: Process) -> str:
    return f"signal {p.signal}" if p.signal else f"exit {p.exit_code}"


def show(summary: TapeSummary) -> str:
    """What a person reads about a tape in ten seconds."""
    tape = summary.tape
    m = tape.manifest
    lines = []
    outcome = f"signal {m.signal}" if m.signal else f"exit {m.exit_code}"
    lines.append(f"{tape.path}")
    lines.append(f"  command   {short_argv(m.argv)}")
    lines.append(
        f"  status    {m.status} ({outcome}) in {seconds(m.duration_s)}, started {m.started_at}"
    )
    h = m.host
    lines.append(
        f"  host      {h.hostname}: {h.os} {h.kernel} {h.arch}, {h.cpus} CPUs, "
        f"{human_size(h.memory_bytes)}"
    )
    if m.git is not None:
        dirty = f", {len(m.git.dirty)} dirty paths" if m.git.dirty else ""
        lines.append(f"  git       {m.git.branch or '?'} @ {(m.git.commit or '?')[:12]}{dirty}")
    if m.labels:
        lines.append("  labels    " + " ".join(f"{k}={v}" for k, v in sorted(m.labels.items())))
    lines.append(
        f"  processes {len(m.processes)} (tracing: {m.tracing.mode}), "
        f"{len(m.outputs)} outputs, {len(m.inputs)} workspace files, "
        f"{len(m.external)} external inputs"
    )
    if m.sampling.sampler != "none" and m.sampling.count:
        lines.append(
            f"  stacks    {m.sampling.sampler} at {m.sampling.rate} Hz: "
            f"{m.sampling.count} Python samples"
            + (f" ({m.sampling.notice})" if m.sampling.notice else "")
        )
    elif m.sampling.notice:
        # No samples is the rule for builds without Python: worth a line only with a reason.
        got = "none" if m.sampling.sampler == "none" else f"{m.sampling.sampler}, no samples"
        lines.append(f"  stacks    {got} ({m.sampling.notice})")
    if m.toolchain:
        tools = ", ".join(f"{t.name} ({t.version or '?'})" for t in m.toolchain[:6])
        lines.append(f"  toolchain {tools}")
    fails = summary.failing if m.status != "succeeded" else []
    if fails:
        lines.append("")
        lines.append("Failing steps")
        errors = summary.step_errors
        for i, (p, origin) in enumerate(fails[:5]):
            lines.append(f"  #{p.id} {_status(p)}  {short_argv(p.argv, 100)}")
            if origin is not p:
                lines.append(f"      failed in #{origin.id} {short_argv(origin.argv, 60)}")
            if i < len(errors) and errors[i] is not None:
                lines.append(f"      first error: {errors[i]}")
        if summary.stderr_tail:
            first = summary.error_line
            lines.append("  last stderr lines:")
            lines += [f"  {'>' if line == first else '|'} {line}" for line in summary.stderr_tail]
    top = summary.slowest
    if top:
        lines.append("")
        lines.append("Slowest steps")
        for p in top:
            lines.append(
                f"  {seconds(p.duration_s or 0.0, 3):>9}  #{p.id:<4} {short_argv(p.argv, 90)}"
            )
    if m.outputs:
        lines.append("")
        lines.append("Outputs")
        for e in m.outputs[:20]:
            lines.append(f"  {e.change:<8} {e.path}  {human_size(e.size)}")
        if len(m.outputs) > 20:
            lines.append(f"  … and {len(m.outputs) - 20} more (buildtape show --format json)")
    ms = summary.metrics
    if ms:
        lines.append("")
        lines.append("Metrics")
        for item in ms:
            unit = f" {item.unit}" if item.unit else ""
            lines.append(f"  {item.name} = {item.value:g}{unit}")
    if m.warnings:
        lines.append("")
        lines.append("Warnings")
        lines += [f"  [{w.kind}] {w.message}" for w in m.warnings]
    return "\n".join(lines) + "\n"


def failed(p: Process) -> bool:
    """A step that exited non-zero or died of a signal."""
    return bool(p.signal) or (p.exit_code is not None and p.exit_code != 0)


def _row(p: Process, command: str) -> str:
    exit_text = p.signal or ("?" if p.exit_code is None else str(p.exit_code))
    duration = "?" if p.duration_s is None else seconds(p.duration_s, 3)
    parent = "-" if p.parent_id is None else str(p.parent_id)
    return f"{p.id:>5} {parent:>6} {duration:>9} {exit_text:>8}  {command}"


def _tree_order(processes: list[Process]) -> list[tuple[Process, str]]:
    """Depth first, children in start order, each with its tree prefix (``├─ ``...)."""
    ids = {p.id for p in processes}
    children: dict[int | None, list[Process]] = {}
    for p in processes:
        parent = p.parent_id if p.parent_id in ids else None
        children.setdefault(parent, []).append(p)
    out: list[tuple[Process, str]] = []
    # An explicit stack: a build's tree can be deeper than Python's recursion limit.
    stack: list[tuple[Process, str, str]] = [
        (p, "", "") for p in reversed(sorted(children.get(None, []), key=lambda p: p.start_s))
    ]
    while stack:
        p, prefix, indent = stack.pop()
        out.append((p, prefix))
        kids = sorted(children.get(p.id, []), key=lambda c: (c.start_s, c.id))
        for i, kid in reversed(list(enumerate(kids))):
            last = i == len(kids) - 1
            branch, below = ("└─ ", "   ") if last else ("├─ ", "│  ")
            stack.append((kid, indent + branch, indent + below))
    return out


def ps(processes: list[Process], tree: bool = False, only_failed: bool = False) -> str:
    """The steps of a tape with the IDs that name them; ``tree``: indented under their
    parents; ``only_failed``: the failed steps (with the tree, also their ancestors)."""
    chosen = processes
    if only_failed:
        by_id = {p.id: p for p in processes}
        keep = {p.id for p in processes if failed(p)}
        if tree:
            for pid in list(keep):
                parent = by_id[pid].parent_id
                while parent is not None and parent in by_id and parent not in keep:
                    keep.add(parent)
                    parent = by_id[parent].parent_id
        chosen = [p for p in processes if p.id in keep]
    lines = [f"{'ID':>5} {'PARENT':>6} {'DURATION':>9} {'EXIT':>8}  COMMAND"]
    if tree:
        lines += [_row(p, prefix + short_argv(p.argv, 90)) for p, prefix in _tree_order(chosen)]
    else:
        lines += [_row(p, short_argv(p.argv, 90)) for p in chosen]
    return "\n".join(lines) + "\n"


def extracted(result: Extracted, out_dir: Path) -> str:
    """What ``extract`` wrote, and how to run it."""
    lines = [
        f"step {result.step.id}: {short_argv(result.step.argv, 100)}",
        f"  {result.files} input files, {len(result.outputs)} recorded outputs -> {out_dir}",
        f"  recorded exit status: {result.recorded_status}",
    ]
    if result.intermediates:
        lines.append(f"  intermediates from earlier steps: {', '.join(result.intermediates)}")
    if result.needs_path:
        lines.append(f"  needs its recorded path ({'; '.join(result.needs_path)}):")
        lines.append("  run.sh runs it there in a bwrap sandbox when bwrap works")
    if result.missing:
        lines.append(f"  not in the tape (too large or secret): {', '.join(result.missing)}")
    if result.redacted:
        lines.append(f"  redacted variables left unset: {', '.join(result.redacted)}")
    lines.append(f"  run it: sh {out_dir / 'run.sh'} (compares exit status and outputs)")
    return "\n".join(lines) + "\n"
