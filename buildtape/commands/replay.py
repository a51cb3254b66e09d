"""``buildtape replay``: re-run a tape in a sandbox and say what reproduced."""

from __future__ import annotations

import codecs
import json
import os
import shlex
import sys
import time
from pathlib import Path

import click

from buildtape import colour
from buildtape.exit_codes import ExitCode
from buildtape.params import TAPE_CODES, VARIATIONS, epilog, json_option, tape_argument
from buildtape.text import replay as text
from recorder.tape import Tape, open_tape
from recorder.trust import printable, recorded_here, recorded_list
from replay.errors import ConsentRequired
from replay.playback import playback as recorded_chunks
from replay.replay import ReplayOptions, environment_changes, needs_consent, replay, replay_env
from replay.run import RunStart
from replay.sandbox import MODES
from replay.vary import VaryOptions
from replay.vary import vary as run_variations


def _echo(text: str = "", err: bool = False) -> None:
    """Echo text that holds values from a tape, with control characters made visible (and
    the verdict in colour on a terminal)."""
    colour.echo(printable(text, one_line=False), "verdict", err=err, nl=False)


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
    lines = [
        f"This tape was not recorded by you here (it says it comes from {host}).",
        f"Replaying runs: {' '.join(shlex.quote(printable(a)) for a in argv)}",
        f"  in: {printable(cwd)} (inside the sandbox)",
    ]
    changes = environment_changes(env, os.environ)
    if changes:
        lines.append(f"  with {len(changes)} environment changes from yours:")
    for sign, name, value in changes:
        shown = "" if value is None else "=" + printable(value[:200])
        lines.append(f"    {sign} {printable(name)}{shown}")
    click.echo("\n".join(lines))
    if not click.confirm("Run it here?", default=False):
        raise click.Abort()


def _play(t: Tape, speed: float) -> None:
    """The recorded output, with its timing, to our own stdout and stderr."""
    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    # The recorded bytes are the tape's: escape sequences are shown, not obeyed.
    decoders = {name: codecs.getincrementaldecoder("utf-8")("backslashreplace") for name in out}
    for delay, stream, data in recorded_chunks(t):
        if delay and speed > 0:
            time.sleep(delay / speed)
        text = printable(decoders[stream].decode(data), one_line=False)
        out[stream].write(text.encode("utf-8", "backslashreplace"))
        out[stream].flush()


def _notify(message: str) -> None:
    colour.say(f"buildtape: note: {printable(message)}")


def _banner(start: RunStart) -> None:
    click.echo(printable(text.banner(start)), err=True)


class _NumberedBanners:
    """The banner of each run of ``--vary``, numbered: several builds stream one after
    another, and each says which run (control or varied) the output below it is."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, start: RunStart) -> None:
        self.runs += 1
        click.echo(printable(f"[run {self.runs}] {text.banner(start)}"), err=True)


EXAMPLES = [
    "buildtape replay fail.tape",
    "buildtape replay last --step 17 --keep",
    "buildtape replay ci.tape --vary time,tz,locale --bisect",
    "buildtape replay ci.tape --playback --speed 4",
]
CODES = (*TAPE_CODES, ExitCode.DIFFERENT, ExitCode.REPLAY_FAILED, ExitCode.ABORTED)


@click.command("replay", epilog=epilog(EXAMPLES, CODES))
@tape_argument()
@click.option("--step", type=int, help="Re-run only this step (ID from `buildtape ps`).")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Sandbox directory (new or empty). Default: a temporary one, removed after.",
)
@click.option("--keep", is_flag=True, help="Keep the temporary sandbox (the replay's workspace).")
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
    type=VARIATIONS,
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
    default=ReplayOptions.sandbox,
    show_default=True,
    help="bwrap: namespaces, workspace at its recorded path; directory: restore elsewhere "
    "(no namespaces). auto: bwrap when it works here, unless $BUILDTAPE_SANDBOX says otherwise.",
)
@json_option("json: the verdict as one JSON object.")
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
    vary: tuple[str, ...] | None,
    bisect: bool,
    sandbox: str,
    fmt: str,
) -> ExitCode:
    """Re-run a tape in a sandbox and say what did and did not reproduce.

    The recorded workspace is restored into the sandbox (your checkout is never touched),
    the recorded environment, cwd and umask are restored, external inputs and tool
    versions are checked for drift, the command runs alone in the sandbox (writes outside
    the workspace stay there), and its outputs are compared with the recorded ones by
    content. With -o, it runs under `buildtape record` for the replay's own tape.
    Exit 0: reproduced; 1: diverged.
    """
    as_json = fmt == "json"
    if bisect and not vary:
        raise click.UsageError("--bisect goes with --vary")
    with open_tape(tape) as t:
        if playback:
            _play(t, speed)
            return ExitCode.OK
        env, _ = replay_env(t.manifest, os.environ, trust_env, pass_env)
        _confirm(t, step, env, yes)
        if vary:
            asked = VaryOptions(vary, bisect, step, keep, workdir, sandbox, tape.name, as_json)
            varied = run_variations(t, asked, os.environ, _notify, _NumberedBanners())
            if as_json:
                click.echo(json.dumps(text.varied_json(varied), indent=2, sort_keys=True))
            else:
                _echo(text.varied(varied))
            return ExitCode.DIFFERENT if varied.unreproducible else ExitCode.OK
        options = ReplayOptions(
            workdir=workdir, keep=keep, step=step, output=output, sandbox=sandbox,
            tape_name=tape.name, build_output_to_stderr=as_json,
            trust_env=trust_env, pass_env=pass_env,
        )  # fmt: skip
        result = replay(t, options, os.environ, _notify, _banner)
    if as_json:
        click.echo(json.dumps(text.replayed_json(result), indent=2, sort_keys=True))
        return ExitCode.OK if result.reproduced else ExitCode.DIFFERENT
    _echo(text.replayed(result))
    if keep or workdir:
        click.echo(f"sandbox: {result.sandbox}")
    return ExitCode.OK if result.reproduced else ExitCode.DIFFERENT
