"""What ``replay`` found, for people: drift, outputs that did not reproduce, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildtape.text.units import short_argv

if TYPE_CHECKING:
    from replay.replay import ReplayResult
    from replay.vary import VaryResult


def replayed(result: ReplayResult) -> str:
    out = [f"drift: {d.path}: {d.recorded} in the tape, {d.here} here" for d in result.drift]
    out += [f"env: {note}" for note in result.env_notes]
    out += [f"input not in the tape (too large or secret): {p}" for p in result.missing_inputs]
    counts: dict[str, int] = {}
    for c in result.checks:
        counts[c.status] = counts.get(c.status, 0) + 1
    for c in result.checks:
        if c.status != "same":
            out.append(
                f"{c.status:>9}: {c.path} (recorded {(c.recorded or '-')[:12]}, "
                f"replayed {(c.replayed or '-')[:12]})"
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
