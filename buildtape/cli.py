"""The command line: parse, build an options object, call the engine, print.

``main`` is the one place where exceptions become messages and exit codes.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from buildtape import show_text
from buildtape.exit_codes import ExitCode
from flame.folded import FoldedFormatError
from recorder import __version__
from recorder.reading import open_tape
from recorder.record import (
    CommandNotExecutable,
    CommandNotFound,
    RecordError,
    RecordOptions,
    TapeWriteFailed,
    record,
)
from recorder.sampling import SAMPLERS, SamplerUnavailable
from recorder.secrets import SecretPolicy
from recorder.summary import json_view
from recorder.tape import TapeError
from recorder.tracing import FILE_EVENT_SOURCES, TRACE_MODES, TracerUnavailable
from replay.extract import ExtractError
from replay.replay import ReplayError
from replay.restore import RestoreError

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.I)


class Failure(Exception):
    """An error the CLI reports as one line with a given exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def _error_code(exc: BaseException) -> int:
    if isinstance(exc, Failure):
        return exc.code
    if isinstance(exc, CommandNotFound):
        return ExitCode.COMMAND_NOT_FOUND
    if isinstance(exc, TapeWriteFailed) and exc.build_status:
        # A failed build still fails the CI step, whatever happened to its tape.
        return exc.build_status
    if isinstance(exc, CommandNotExecutable):
        return ExitCode.NOT_EXECUTABLE
    if isinstance(exc, (RecordError, TracerUnavailable, SamplerUnavailable)):
        return ExitCode.RECORD_FAILED
    if isinstance(exc, TapeError):
        return ExitCode.NOT_FOUND if "no tape at" in str(exc) else ExitCode.BAD_TAPE
    if isinstance(exc, FoldedFormatError):
        return ExitCode.BAD_INPUT
    if isinstance(exc, (ReplayError, ExtractError, RestoreError)):
        return ExitCode.REPLAY_FAILED
    if isinstance(exc, FileNotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(exc, OSError):
        return ExitCode.IO_ERROR
    return ExitCode.INTERNAL


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, TapeError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if _error_code(exc) == ExitCode.INTERNAL:
        return f"internal error: {exc!r}; run again with --traceback and report it"
    return str(exc)


def parse_size(text: str) -> int:
    m = _SIZE.match(text.strip())
    if not m:
        raise click.BadParameter(f"{text!r} is not a size like 64M, 1.5G or 4096")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def _label(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r} is not KEY=VALUE", param_hint="--label")
        out.append((key, value))
    return tuple(out)


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="buildtape")
@click.option(
    "--traceback", is_flag=True, help="Show the Python stack on errors (for bug reports)."
)
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """A flight recorder for software builds.

    \b
    Record a build:      buildtape record -o ci.tape -- make -j8
    Read what happened:  buildtape show ci.tape
    Check a tape:        buildtape verify ci.tape

    Exit codes are listed in docs/cli.md; `buildtape record` exits with the
    build's own status so it can sit in front of any CI step.
    """
    ctx.obj = {"traceback": traceback}


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tape to write. Default: .buildtape/tapes/<time>-<cmd>-<pid>.tape in the workspace.",
)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Root to snapshot before and after. Default: the git top level, else the cwd.",
)
@click.option(
    "--trace",
    type=click.Choice(TRACE_MODES),
    default="auto",
    show_default=True,
    help="How to see processes and files: strace (full), proc (/proc polling, no "
    "per-process reads), none (root process only); auto falls back from strace to proc.",
)
@click.option(
    "--file-events",
    type=click.Choice(FILE_EVENT_SOURCES),
    default="auto",
    show_default=True,
    help="Where per-process file reads and writes come from: preload (an LD_PRELOAD shim, "
    "compiled once with cc; no ptrace stops) or strace (tracing openat: slower, but also sees "
    "static binaries); auto: preload when the shim builds, else strace.",
)
@click.option(
    "--stacks",
    type=click.Choice(SAMPLERS),
    default="auto",
    show_default=True,
    help="Sample the build's Python processes: py-spy (reads memory, no pause; needs ptrace "
    "permission) or pyinstrument (injected with a sitecustomize; no privilege); auto picks "
    "py-spy when ptrace works, else pyinstrument.",
)
@click.option(
    "--rate",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    metavar="HZ",
    help="Python samples per second.",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Leave matching paths (relative path or file name) out of the snapshots. Repeatable.",
)
@click.option(
    "--label", multiple=True, metavar="KEY=VALUE", help="Attach a label to the tape. Repeatable."
)
@click.option(
    "--redact",
    multiple=True,
    metavar="NAME_GLOB",
    help="Also treat variables matching this name glob as secrets. Repeatable.",
)
@click.option(
    "--no-redact",
    multiple=True,
    metavar="NAME_GLOB",
    help="Never treat variables matching this name glob as secrets. Repeatable.",
)
@click.option(
    "--max-store-size",
    default="64M",
    show_default=True,
    metavar="SIZE",
    help="Files larger than this are hashed but not stored.",
)
@click.option(
    "--no-tty",
    is_flag=True,
    help="Give the build pipes even when buildtape's output is a terminal.",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print nothing of buildtape's own unless something is wrong.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def record_cmd(
    output: Path | None,
    workspace: Path | None,
    trace: str,
    file_events: str,
    stacks: str,
    rate: int,
    exclude: tuple[str, ...],
    label: tuple[str, ...],
    redact: tuple[str, ...],
    no_redact: tuple[str, ...],
    max_store_size: str,
    no_tty: bool,
    quiet: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND, pass its output and exit status through, and record it into a tape.

    \b
    Examples:
      buildtape record -- make -j8
      buildtape record -o fail.tape --label ci=github -- ninja -C build
      buildtape record --trace proc -- ./build.sh     # where ptrace is not allowed

    Secrets in the environment (names like *TOKEN*, *SECRET*, *PASSWORD*, *_KEY, and
    credential-shaped values) are redacted, and their values scrubbed from everything
    captured. A build step can add events by appending JSON lines to $BUILDTAPE_EVENTS.
    """
    options = RecordOptions(
        argv=command,
        output=output,
        workspace=workspace,
        trace=trace,
        file_events=file_events,
        stacks=stacks,
        rate=rate,
        excludes=exclude,
        labels=_label(label),
        secrets=SecretPolicy(extra_secret_names=redact, extra_allowed_names=no_redact),
        max_store_bytes=parse_size(max_store_size),
        use_tty=not no_tty,
    )

    def notify(message: str) -> None:
        click.echo(f"buildtape: note: {message}", err=True)

    result = record(options, notify)
    m = result.manifest
    if not quiet:
        click.echo(
            f"buildtape: {m.status}, {len(m.processes)} processes, {m.duration_s:.2f}s; "
            f"tape: {result.tape}",
            err=True,
        )
    sys.exit(result.exit_status)


record_cmd.name = "record"


@cli.command()
@click.argument("tape", type=click.Path(path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the documented JSON object (docs/cli.md)."
)
def show(tape: Path, as_json: bool) -> None:
    """Summarise a tape: command, status, host, slowest and failing steps, outputs, warnings."""
    with open_tape(tape) as t:
        if as_json:
            _emit_json(json_view(t))
        else:
            click.echo(show_text.render(t), nl=False)


@cli.command()
@click.argument("tape", type=click.Path(path_type=Path))
def verify(tape: Path) -> None:
    """Check every checksum in a tape; exit 0 when sound, 3 naming the first problem otherwise."""
    with open_tape(tape) as t:
        count = t.reader.verify()
    click.echo(
        f"{tape}: ok (format {t.manifest.format_version}, manifest and {count} blobs verified)"
    )


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    show_tb = "--traceback" in args[: args.index("--")] if "--" in args else "--traceback" in args
    try:
        cli.main(args=args, prog_name="buildtape", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("buildtape: aborted", err=True)
        sys.exit(ExitCode.RECORD_FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("buildtape: interrupted", err=True)
        sys.exit(130)
    except BaseException as exc:
        if show_tb:
            traceback.print_exc()
        click.echo(f"buildtape: error: {_message(exc)}", err=True)
        sys.exit(_error_code(exc))
    sys.exit(ExitCode.OK)


def _register() -> None:
    from buildtape.flame_cli import flame_cmd
    from buildtape.replay_cli import diff_cmd, extract_cmd, ps_cmd, replay_cmd

    for command in (flame_cmd, ps_cmd, extract_cmd, replay_cmd, diff_cmd):
        cli.add_command(command)


_register()
