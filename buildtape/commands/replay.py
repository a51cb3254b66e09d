"""``buildtape replay``: re-run a tape in a sandbox and say what reproduced."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import click

from buildtape.exit_codes import ExitCode
from buildtape.params import VARIATIONS, json_option
from buildtape.text import replay as text
from buildtape.text.units import short_argv
from recorder.reading import Tape, open_tape
from replay.playback import playback as recorded_chunks
from replay.replay import ReplayOptions, replay
from replay.run import RunStart
from replay.sandbox import MODES
from replay.vary import VaryOptions
from replay.vary import vary as run_variations


def _confirm(tape_host: str, argv: list[str], yes: bool) -> None:
    if yes or not sys.stdin.isatty() or tape_host == socket.gethostname():
        return
    click.echo(f"This tape was recorded on {tape_host}; replaying runs: {short_argv(argv, 200)}")
    if not click.confirm("Run it here?", default=False):
        raise click.Abort()


def _play(t: Tape, speed: float) -> None:
    """The recorded output, with its timing, to our own stdout and stderr."""
    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    for delay, stream, data in recorded_chunks(t):
        if delay and speed > 0:
            time.sleep(delay / speed)
        out[stream].write(data)
        out[stream].flush()


def _notify(message: str) -> None:
    click.echo(f"buildtape: note: {message}", err=True)


def _banner(start: RunStart) -> None:
    click.echo(text.banner(start), err=True)


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
@click.option("--yes", is_flag=True, help="Do not ask before running a tape from another host.")
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
@json_option("Print the verdict as one JSON object.")
def replay_cmd(
    tape: Path,
    step: int | None,
    workdir: Path | None,
    keep: bool,
    output: Path | None,
    playback: bool,
    speed: float,
    yes: bool,
    vary: tuple[str, ...] | None,
    bisect: bool,
    sandbox: str,
    as_json: bool,
) -> ExitCode:
    """Re-run a tape in a sandbox and say what did and did not reproduce.

    The recorded workspace is restored into the sandbox (your checkout is never touched),
    the recorded environment, cwd and umask are restored, external inputs and tool
    versions are checked for drift, the command runs under `buildtape record`, and its
    outputs are compared with the recorded ones by content.

    \b
    Exit codes: 0 reproduced, 1 diverged, others as in docs/cli.md.
    """
    if bisect and not vary:
        raise click.UsageError("--bisect goes with --vary")
    with open_tape(tape) as t:
        if playback:
            _play(t, speed)
            return ExitCode.OK
        _confirm(t.manifest.host.hostname, t.manifest.argv, yes)
        if vary:
            asked = VaryOptions(vary, bisect, step, keep, workdir, sandbox, tape.name, as_json)
            varied = run_variations(t, asked, os.environ, _notify, _banner)
            if as_json:
                click.echo(json.dumps(text.varied_json(varied), indent=2, sort_keys=True))
            else:
                click.echo(text.varied(varied), nl=False)
            return ExitCode.DIFFERENT if varied.unreproducible else ExitCode.OK
        options = ReplayOptions(
            workdir=workdir, keep=keep, step=step, output=output, sandbox=sandbox,
            tape_name=tape.name, build_output_to_stderr=as_json,
        )  # fmt: skip
        result = replay(t, options, os.environ, _notify, _banner)
    if as_json:
        click.echo(json.dumps(text.replayed_json(result), indent=2, sort_keys=True))
        return ExitCode.OK if result.reproduced else ExitCode.DIFFERENT
    click.echo(text.replayed(result), nl=False)
    if keep or workdir:
        click.echo(f"sandbox: {result.sandbox}")
    return ExitCode.OK if result.reproduced else ExitCode.DIFFERENT
