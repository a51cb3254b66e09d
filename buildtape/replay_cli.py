"""``buildtape ps``, ``extract`` and ``replay``: naming steps and re-running them."""

from __future__ import annotations

import codecs
import json
import os
import shlex
import sys
import time
from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.show_text import short_argv
from recorder.reading import Tape, open_tape
from recorder.trust import printable, recorded_here, recorded_list
from replay.extract import ExtractOptions, extract
from replay.playback import playback as recorded_chunks
from replay.replay import (
    ConsentRequired,
    ReplayOptions,
    ReplayResult,
    environment_changes,
    needs_consent,
    replay,
    replay_env,
)
from replay.run import RunStart
from replay.sandbox import MODES
from replay.vary import VaryOptions, VaryResult, parse_variations
from replay.vary import vary as run_variations


def _echo(text: str = "", err: bool = False) -> None:
    """Echo text that holds values from a tape, with control characters made visible."""
    click.echo(printable(text, one_line=False), err=err)


@click.command("ps")
@click.argument("tape", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One object per step, as a JSON array.")
def ps_cmd(tape: Path, as_json: bool) -> None:
    """List the recorded steps (processes) with the ID that names them.

    \b
    ID is stable for a tape: use it with `buildtape replay TAPE --step ID`
    and `buildtape extract TAPE --step ID -o DIR`.
    """
    with open_tape(tape) as t:
        procs = t.manifest.processes
    if as_json:
        rows = [
            {"id": p.id, "parent_id": p.parent_id, "pid": p.pid, "duration_s": p.duration_s,
             "exit_code": p.exit_code, "signal": p.signal, "argv": p.argv, "cwd": p.cwd}
            for p in procs
        ]  # fmt: skip
        _echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    _echo(f"{'ID':>5} {'PARENT':>6} {'DURATION':>9} {'EXIT':>8}  COMMAND")
    for p in procs:
        exit_text = p.signal or ("?" if p.exit_code is None else str(p.exit_code))
        duration = "?" if p.duration_s is None else f"{p.duration_s:.3f}s"
        parent = "-" if p.parent_id is None else str(p.parent_id)
        _echo(f"{p.id:>5} {parent:>6} {duration:>9} {exit_text:>8}  {short_argv(p.argv, 90)}")


@click.command("extract")
@click.argument("tape", type=click.Path(path_type=Path))
@click.option("--step", type=int, required=True, help="The step ID (see `buildtape ps`).")
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="New or empty directory for the reproducer.",
)
def extract_cmd(tape: Path, step: int, out_dir: Path) -> None:
    """Write a standalone reproducer of one step: its inputs and a run.sh.

    The directory can be attached to a bug report: `sh run.sh` re-runs the step with the
    recorded cwd, environment and argv (at the recorded path in a bwrap sandbox when the
    step needs it), exits with the step's status, and compares it and the outputs with the
    recording (`sha256sum -c expected.sha256`). No buildtape is needed to run it.
    """
    with open_tape(tape) as t:
        result = extract(t, ExtractOptions(step, out_dir))
    _echo(f"step {result.step.id}: {short_argv(result.step.argv, 100)}")
    _echo(f"  {result.files} input files, {len(result.outputs)} recorded outputs -> {out_dir}")
    _echo(f"  recorded exit status: {result.recorded_status}")
    if result.intermediates:
        _echo(f"  intermediates from earlier steps: {', '.join(result.intermediates)}")
    if result.needs_path:
        _echo(f"  needs its recorded path ({'; '.join(result.needs_path)}):")
        _echo("  run.sh runs it there in a bwrap sandbox when bwrap works")
    if result.missing:
        _echo(f"  not in the tape (too large or secret): {', '.join(result.missing)}")
    if result.redacted:
        _echo(f"  redacted variables left unset: {', '.join(result.redacted)}")
    _echo(f"  run it: sh {out_dir / 'run.sh'} (compares exit status and outputs)")


def _confirm(t: Tape, step: int | None, env: dict[str, str], yes: bool) -> None:
    """Ask before running a tape this user did not record on this machine.

    Without a terminal to ask on, refuse unless --yes was given. The question shows the
    command, its cwd and every environment change, with control characters made visible.
    """
    if yes or not needs_consent(t, lambda d: recorded_here(d, recorded_list(os.environ))):
        return
    if not sys.stdin.isatty():
        raise ConsentRequired(
            "this tape was not recorded by you on this machine and there is no terminal to "
            "ask on; check what it runs (`buildtape show`, `buildtape ps`), then pass --yes"
        )
    m = t.manifest
    proc = next((p for p in m.processes if p.id == step), None) if step is not None else None
    argv, cwd = (proc.argv, proc.cwd) if proc is not None else (m.argv, m.cwd)
    host = printable(m.host.hostname)
    _echo(f"This tape was not recorded by you here (it says it comes from {host}).")
    _echo(f"Replaying runs: {' '.join(shlex.quote(printable(a)) for a in argv)}")
    _echo(f"  in: {printable(cwd)} (inside the sandbox)")
    changes = environment_changes(env, os.environ)
    if changes:
        _echo(f"  with {len(changes)} environment changes from yours:")
    for sign, name, value in changes:
        shown = "" if value is None else "=" + printable(value[:200])
        _echo(f"    {sign} {printable(name)}{shown}")
    if not click.confirm("Run it here?", default=False):
        raise click.Abort()


def _banner(start: RunStart) -> None:
    """One line before each run: which tape, which step or variation, where."""
    what = "the whole build"
    if start.step is not None:
        what = f"step {start.step} ({short_argv(start.step_argv, 60)})"
    if start.variation:
        what += f", {start.variation}"
    kinds = {"bwrap": "bwrap sandbox", "directory": "directory, no namespaces"}
    kind = kinds.get(start.isolation, start.isolation)
    _echo(f"replay: {start.tape}: {what} at {start.place} ({kind})", err=True)


def result_json(result: ReplayResult) -> dict[str, object]:
    """The verdict as ``--json`` prints it (stable keys, sorted lists)."""
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
        "missing_inputs": result.missing_inputs,
        "sandbox": str(result.sandbox),
    }


def _report(result: ReplayResult) -> None:
    for d in result.drift:
        _echo(f"drift: {d.path}: {d.recorded} in the tape, {d.here} here")
    for note in result.env_notes:
        _echo(f"env: {note}")
    for path in result.missing_inputs:
        _echo(f"input not in the tape (too large or secret): {path}")
    if result.isolation_note:
        _echo(f"note: {result.isolation_note}")
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
            _echo(
                f"{label:>9}: {c.path} (recorded {(c.recorded or '-')[:12]}, "
                f"replayed {(c.replayed or '-')[:12]}){reason}"
            )
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no outputs"
    if result.reproduced:
        _echo(f"reproduced: {summary}; exit {result.replay_exit} as recorded")
        return
    why = []
    if result.replay_exit != result.recorded_exit:
        why.append(f"exit {result.replay_exit}, recorded {result.recorded_exit}")
    _echo(f"diverged: {summary}" + (f"; {'; '.join(why)}" if why else ""))
    step = result.first_divergent_step
    if step is not None:
        _echo(f"first divergent step: #{step.id} {short_argv(step.argv, 100)}")
    if result.diff_cause:
        _echo(f"diff: {result.diff_cause}")


def vary_json(r: VaryResult) -> dict[str, object]:
    return {
        "variations": list(r.variations),
        "noisy": r.noisy,
        "unreproducible": r.unreproducible,
        "responsible": r.responsible,
        "runs": [{"applied": list(names), "differing": diffs} for names, diffs in r.runs],
    }


def _report_vary(r: VaryResult) -> None:
    for path in r.noisy:
        _echo(f"not reproducible even without variation: {path}")
    for names, diffs in r.runs:
        shown = ", ".join(diffs) if diffs else "all outputs reproduced"
        _echo(f"varied {','.join(names)}: {shown}")
    if not r.unreproducible:
        _echo(f"reproducible under {','.join(r.variations)}")
        return
    _echo(f"not reproducible under variation: {', '.join(r.unreproducible)}")
    if r.responsible:
        _echo(f"responsible variation: {r.responsible} ({len(r.runs)} varied runs)")


@click.command("replay")
@click.argument("tape", type=click.Path(path_type=Path))
@click.option("--step", type=int, help="Re-run only this step (ID from `buildtape ps`).")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Sandbox directory (new or empty). Default: a temporary one, removed after.",
)
@click.option("--keep", is_flag=True, help="Keep the temporary sandbox and the replay's tape.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the replay's own tape here.",
)
@click.option(
    "--playback", is_flag=True, help="Print the recorded output with its timing; run nothing."
)
@click.option("--speed", type=float, default=1.0, show_default=True, help="Playback speed factor.")
@click.option(
    "--yes", is_flag=True, help="Do not ask before running a tape not recorded by you here."
)
@click.option(
    "--trust-env",
    is_flag=True,
    help="Keep variables a tape must not set by default (LD_PRELOAD, BASH_ENV, XDG_*...).",
)
@click.option(
    "--pass-env",
    "pass_env",
    multiple=True,
    metavar="NAME",
    help="Take NAME from your environment (a redacted variable is otherwise left unset).",
)
@click.option(
    "--vary",
    metavar="LIST",
    help="Run a control replay and a varied one, and report the outputs that change. "
    "LIST: comma-separated, from time,tz,locale,umask,path,env-order,jobs.",
)
@click.option(
    "--bisect",
    is_flag=True,
    help="With --vary: find the single variation responsible (at most ceil(log2 k)+1 varied runs).",
)
@click.option(
    "--sandbox",
    type=click.Choice(MODES),
    default="auto",
    show_default=True,
    help="bwrap: namespaces, workspace at its recorded path; directory: restore elsewhere "
    "(no namespaces). auto: bwrap when it works here, unless $BUILDTAPE_SANDBOX says otherwise.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
def replay_cmd(
    tape: Path,
    step: int | None,
    workdir: Path | None,
    keep: bool,
    output: Path | None,
    playback: bool,
    speed: float,
    yes: bool,
    trust_env: bool,
    pass_env: tuple[str, ...],
    vary: str | None,
    bisect: bool,
    sandbox: str,
    as_json: bool,
) -> None:
    """Re-run a tape in a sandbox and say what did and did not reproduce.

    The recorded workspace is restored into the sandbox (your checkout is never touched),
    the recorded environment, cwd and umask are restored, external inputs and tool
    versions are checked for drift, the command runs under `buildtape record`, and its
    outputs are compared with the recorded ones by content.

    \b
    Exit codes: 0 reproduced, 1 diverged, others as in docs/cli.md.
    """
    with open_tape(tape) as t:
        if playback:
            out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
            # The recorded bytes are the tape's: escape sequences are shown, not obeyed.
            decoders = {
                name: codecs.getincrementaldecoder("utf-8")("backslashreplace") for name in out
            }
            for delay, stream, data in recorded_chunks(t):
                if delay and speed > 0:
                    time.sleep(delay / speed)
                text = printable(decoders[stream].decode(data), one_line=False)
                out[stream].write(text.encode("utf-8", "backslashreplace"))
                out[stream].flush()
            return
        m = t.manifest
        pass_names = tuple(pass_env)
        env, _ = replay_env(m, os.environ, trust_env, pass_names)
        _confirm(t, step, env, yes)

        def notify(message: str) -> None:
            _echo(f"buildtape: note: {message}", err=True)

        if vary:
            asked = VaryOptions(
                parse_variations(vary), bisect, step, keep, workdir, sandbox, tape.name, as_json
            )
            varied = run_variations(t, asked, os.environ, notify, _banner)
            if as_json:
                _echo(json.dumps(vary_json(varied), indent=2, sort_keys=True))
            else:
                _report_vary(varied)
            sys.exit(ExitCode.DIFFERENT if varied.unreproducible else ExitCode.OK)
        if bisect:
            raise click.UsageError("--bisect goes with --vary")
        options = ReplayOptions(
            workdir=workdir, keep=keep, step=step, output=output, sandbox=sandbox,
            tape_name=tape.name, build_output_to_stderr=as_json,
            trust_env=trust_env, pass_env=pass_names,
        )  # fmt: skip
        result = replay(t, options, os.environ, notify, _banner)
    if as_json:
        _echo(json.dumps(result_json(result), indent=2, sort_keys=True))
        sys.exit(ExitCode.OK if result.reproduced else ExitCode.DIFFERENT)
    _report(result)
    if keep or workdir:
        _echo(f"sandbox: {result.sandbox}")
    sys.exit(ExitCode.OK if result.reproduced else ExitCode.DIFFERENT)
