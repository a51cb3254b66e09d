"""The command line: a group whose commands load only when they run.

``main`` is the one place where exceptions become messages and exit codes.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import NoReturn

import click

from buildtape.exit_codes import ExitCode
from recorder import __version__
from recorder.trust import printable

# name -> "module:attribute"; importing a command's engine only when it runs keeps every
# command's start-up (record's included) to what that command needs.
COMMANDS = {
    "record": "buildtape.record_cli:record_cmd",
    "show": "buildtape.tape_cli:show",
    "verify": "buildtape.tape_cli:verify",
    "ps": "buildtape.replay_cli:ps_cmd",
    "replay": "buildtape.replay_cli:replay_cmd",
    "extract": "buildtape.replay_cli:extract_cmd",
    "diff": "buildtape.diff_cli:diff_cmd",
    "flame": "buildtape.flame_cli:flame_cmd",
    "report": "buildtape.report_cli:report_cmd",
    "history": "buildtape.history_cli:history_cmd",
    "stats": "buildtape.stats_cli:stats_cmd",
    "alerts": "buildtape.alerts_cli:alerts_cmd",
    "check": "buildtape.alerts_cli:check_cmd",
    "events": "buildtape.events_cli:events_cmd",
    "export": "buildtape.export_cli:export_cmd",
    "gc": "buildtape.gc_cli:gc_cmd",
    "config": "buildtape.config_cli:config_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


def _error_code(exc: BaseException) -> int:
    from buildtape.config import ConfigError
    from buildtape.history_store import HistoryError
    from buildtape.otlp import OtlpError
    from flame.folded import FoldedFormatError
    from recorder.record import (
        CommandNotExecutable,
        CommandNotFound,
        RecordError,
        TapeWriteFailed,
    )
    from recorder.sampling import SamplerUnavailable
    from recorder.tape import TapeError
    from recorder.tracing import TracerUnavailable
    from replay.extract import ExtractError
    from replay.replay import ConsentRequired, ReplayError
    from replay.restore import RestoreError

    if isinstance(exc, MemoryError):
        return ExitCode.OUT_OF_MEMORY
    if isinstance(exc, ConsentRequired):
        return ExitCode.ABORTED
    if isinstance(exc, ConfigError):
        return ExitCode.BAD_INPUT
    if isinstance(exc, OtlpError):
        return ExitCode.IO_ERROR
    if isinstance(exc, HistoryError):
        return ExitCode.USAGE if "--since" in str(exc) else ExitCode.IO_ERROR
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
    from recorder.tape import TapeError

    if isinstance(exc, OSError) and not isinstance(exc, TapeError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if isinstance(exc, MemoryError):
        return "out of memory; the tape or input is too large for the memory available here"
    if _error_code(exc) == ExitCode.INTERNAL:
        return f"internal error: {exc!r}; run again with --traceback and report it"
    return str(exc)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: runs one command and exits with its code."""
    try:
        _run(sys.argv[1:] if argv is None else argv)
    finally:
        # The process ends here. Freezing the heap spares the interpreter's last garbage
        # collections over every object (~25 ms after a recording, measured), a wait
        # that `record` would otherwise add to every CI step.
        gc.freeze()


def _run(args: list[str]) -> NoReturn:
    show_tb = "--traceback" in args[: args.index("--")] if "--" in args else "--traceback" in args
    try:
        cli.main(args=args, prog_name="buildtape", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("buildtape: aborted; nothing was run", err=True)
        sys.exit(ExitCode.ABORTED)
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
            import traceback

            traceback.print_exc()
        # One line, with any control character from a tape made visible.
        click.echo(f"buildtape: error: {printable(_message(exc))}", err=True)
        sys.exit(_error_code(exc))
    sys.exit(ExitCode.OK)
