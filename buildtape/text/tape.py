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
    if m.sampling.sampler != "none":
        lines.append(
            f"  stacks    {m.sampling.sampler} at {m.sampling.rate} Hz: "
            f"{m.sampling.count} Python samples"
            + (f" ({m.sampling.notice})" if m.sampling.notice else "")
        )
    elif m.sampling.notice:
        lines.append(f"  stacks    none ({m.sampling.notice})")
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
            lines.append(f"  … and {len(m.outputs) - 20} more (buildtape show --json)")
    ms = summary.metrics
    if ms:
        lines.append("")
        lines.append("Metrics")
        for item in ms:
            unit = f" {item['unit']}" if item["unit"] else ""
            lines.append(f"  {item['name']} = {item['value']:g}{unit}")
    if m.warnings:
        lines.append("")
        lines.append("Warnings")
        lines += [f"  [{w.kind}] {w.message}" for w in m.warnings]
    return "\n".join(lines) + "\n"


def ps(processes: list[Process]) -> str:
    """The steps of a tape with the IDs that name them."""
    lines = [f"{'ID':>5} {'PARENT':>6} {'DURATION':>9} {'EXIT':>8}  COMMAND"]
    for p in processes:
        exit_text = p.signal or ("?" if p.exit_code is None else str(p.exit_code))
        duration = "?" if p.duration_s is None else seconds(p.duration_s, 3)
        parent = "-" if p.parent_id is None else str(p.parent_id)
        lines.append(
            f"{p.id:>5} {parent:>6} {duration:>9} {exit_text:>8}  {short_argv(p.argv, 90)}"
        )
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
