"""The text form of a diff report: verdict and cause first, then each section."""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildtape.text.units import short_argv

if TYPE_CHECKING:
    from replay.diff import DiffReport


def _argv(argv: list[str]) -> str:
    return short_argv(argv, 120)


def render(r: DiffReport) -> str:
    out = [f"verdict: {r.verdict}"]
    if r.cause:
        out.append(f"likely cause: {r.cause}")
    env = r.environment
    env_changed = env.differs
    if r.equivalent and not env_changed and not r.toolchain:
        return "\n".join(out) + "\n"
    c = r.command
    out.append("")
    out.append("== command and status")
    if not c.same:
        out += [f"- {_argv(c.a)}", f"+ {_argv(c.b)}"]
    (status_a, status_b), (exit_a, exit_b) = c.status, c.exit_code
    out.append(f"  status {status_a} (exit {exit_a}) -> {status_b} (exit {exit_b})")
    if env_changed:
        out.append("")
        out.append("== environment")
        out += [f"+ {name}" for name in env.added]
        out += [f"- {name}" for name in env.removed]
        out += [
            f"~ {ch.name}: secret value changed (compared by digest, not shown)"
            if ch.secret
            else f"~ {ch.name}: {ch.a!r} -> {ch.b!r}"
            for ch in env.changed
        ]
        out += [f"~ {k}: {v[0]} -> {v[1]}" for k, v in sorted(env.other.items())]
    if r.toolchain:
        out.append("")
        out.append("== toolchain (tools that ran in both builds)")
        for t in r.toolchain:
            out.append(f"~ {t.name} {t.path}: {t.a} -> {t.b}")
    if r.external:
        out.append("")
        out.append("== external inputs")
        out += [f"~ {e.path}: {e.a} -> {e.b}" for e in r.external]
    for title, files in (("inputs (workspace before the build)", r.inputs), ("outputs", r.outputs)):
        if not files:
            continue
        out.append("")
        out.append(f"== {title}")
        for f in files:
            out.append(f"{f.status:>8}: {f.path}")
            out += [f"    {line}" for line in f.detail]
    s = r.steps
    if s.changed or s.only_in_a or s.only_in_b:
        out.append("")
        out.append("== steps")
        for ch in s.changed:
            out.append(f"{ch.role:>16}: #{ch.step_a} -> #{ch.step_b} {ch.identity}")
            if ch.what:
                out.append(f"                  own: {'; '.join(ch.what)}")
            if ch.status[0] != ch.status[1]:
                out.append(f"                  status: {ch.status[0]} -> {ch.status[1]}")
            if ch.argv_diff:
                out.append(f"                  arguments: {_argv(ch.argv_diff)}")
            if ch.changed_inputs:
                out.append(f"                  inputs: {', '.join(ch.changed_inputs)}")
            if ch.changed_outputs:
                out.append(f"                  outputs: {', '.join(ch.changed_outputs)}")
        for side, only in (("A", s.only_in_a), ("B", s.only_in_b)):
            for p in only:
                probe = " (a query: wrote nothing)" if p.probe else ""
                out.append(f"       only in {side}: #{p.id} {_argv(p.argv)}{probe}")
    times = r.timings
    out.append("")
    out.append(f"== timings: {times.total[0]:.3f}s -> {times.total[1]:.3f}s")
    for row in times.steps:
        out.append(f"  {row.delta_s:+8.3f}s  {row.a_s:.3f}s -> {row.b_s:.3f}s  {row.step}")
    for name, lines in sorted(r.streams.items()):
        out.append("")
        out.append(f"== {name} (normalised)")
        out += [f"  {line}" for line in lines]
    return "\n".join(out) + "\n"
