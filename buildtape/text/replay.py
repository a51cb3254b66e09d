"""What ``replay`` found, for people: drift, outputs that did not reproduce, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildtape.text.units import short_argv

if TYPE_CHECKING:
    from replay.replay import ReplayResult
    from replay.run import RunStart
    from replay.vary import VaryResult


def banner(start: RunStart) -> str:
    """One line before each run: which tape, which step or variation, where."""
    what = "the whole build"
    if start.step is not None:
        what = f"step {start.step} ({short_argv(start.step_argv, 60)})"
    if start.variation:
        what += f", {start.variation}"
    kinds = {"bwrap": "bwrap sandbox", "directory": "directory, no namespaces"}
    kind = kinds.get(start.isolation, start.isolation)
    return f"replay: {start.tape}: {what} at {start.place} ({kind})"


def replayed_json(result: ReplayResult) -> dict[str, object]:
    """The verdict as ``replay --json`` prints it (stable keys, sorted lists)."""
    step = result.first_divergent_step
    return {
        "reproduced": result.reproduced,
        "step": result.step,
        "isolation": result.isolation,
        "place": result.place,
        "recorded_place": result.recorded_place,
        "isolation_note": result.isolation_note,
        "exit": {"replayed": result.replay_exit, "recorded": result.recorded_exit},
        "outputs": [
            {"path": c.path, "status": c.status, "recorded": c.recorded, "replayed": c.replayed}
            for c in result.checks
        ],
        "findings": [
            {"path": f.path, "reason": f.reason, "why": f.why, "expected": f.expected}
            for f in result.findings
        ],
        "first_divergent_step": None if step is None else {"id": step.id, "argv": step.argv},
        "diff_cause": result.diff_cause,
        "drift": [{"path": d.path, "recorded": d.recorded, "here": d.here} for d in result.drift],
        "env_notes": result.env_notes,
        "notes": result.notes,
        "missing_inputs": result.missing_inputs,
        "sandbox": str(result.sandbox),
    }


def varied_json(r: VaryResult) -> dict[str, object]:
    """``replay --vary --json``."""
    return {
        "variations": list(r.variations),
        "noisy": r.noisy,
        "unreproducible": r.unreproducible,
        "responsible": r.responsible,
        "runs": [{"applied": list(names), "differing": diffs} for names, diffs in r.runs],
    }


def replayed(result: ReplayResult) -> str:
    out = [f"drift: {d.path}: {d.recorded} in the tape, {d.here} here" for d in result.drift]
    out += [f"env: {note}" for note in result.env_notes]
    out += [
        f"input not in the tape (too large, secret, or gone before the build ended): {p}"
        for p in result.missing_inputs
    ]
    if result.isolation_note:
        out.append(f"note: {result.isolation_note}")
    out += [f"note: {note}" for note in result.notes]
    why_of = {f.path: f for f in result.findings}
    counts: dict[str, int] = {}
    for c in result.checks:
        found = why_of.get(c.path)
        status = "expected" if found and found.expected else c.status
        counts[status] = counts.get(status, 0) + 1
    for c in result.checks:
        if c.status != "same":
            finding = why_of.get(c.path)
            label = "expected" if finding and finding.expected else c.status
            reason = f": {finding.reason}, {finding.why}" if finding else ""
            out.append(
                f"{label:>9}: {c.path} (recorded {(c.recorded or '-')[:12]}, "
                f"replayed {(c.replayed or '-')[:12]}){reason}"
            )
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no outputs"
    if result.reproduced:
        out.append(f"reproduced: {summary}; exit {result.replay_exit} as recorded")
        return "\n".join(out) + "\n"
    why = []
    if result.replay_exit != result.recorded_exit:
        why.append(f"exit {result.replay_exit}, recorded {result.recorded_exit}")
    out.append(f"diverged: {summary}" + (f"; {'; '.join(why)}" if why else ""))
    step = result.first_divergent_step
    if step is not None:
        out.append(f"first divergent step: #{step.id} {short_argv(step.argv, 100)}")
    if result.diff_cause:
        out.append(f"diff: {result.diff_cause}")
    return "\n".join(out) + "\n"


def varied(r: VaryResult) -> str:
    out = [f"not reproducible even without variation: {path}" for path in r.noisy]
    for names, diffs in r.runs:
        shown = ", ".join(diffs) if diffs else "all outputs reproduced"
        out.append(f"varied {','.join(names)}: {shown}")
    if not r.unreproducible:
        out.append(f"reproducible under {','.join(r.variations)}")
        return "\n".join(out) + "\n"
    out.append(f"not reproducible under variation: {', '.join(r.unreproducible)}")
    if r.responsible:
        out.append(f"responsible variation: {r.responsible} ({len(r.runs)} varied runs)")
    return "\n".join(out) + "\n"
