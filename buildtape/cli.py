"""The command line: a group whose commands (``buildtape.commands``) load only when they run.

``main`` is the one place where the process exits: a command returns its exit code, and
an error becomes one line and the code ``buildtape.errors`` gives its class.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import NoReturn

import click

from buildtape.exit_codes import ExitCode
from recorder import __version__

# name -> "module:attribute"; importing a command's engine only when it runs keeps every
# command's start-up (record's included) to what that command needs.
COMMANDS = {
    "record": "buildtape.commands.record:record_cmd",
    "show": "buildtape.commands.show:show_cmd",
    "verify": "buildtape.commands.verify:verify_cmd",
    "ps": "buildtape.commands.ps:ps_cmd",
    "replay": "buildtape.commands.replay:replay_cmd",
    "extract": "buildtape.commands.extract:extract_cmd",
    "diff": "buildtape.commands.diff:diff_cmd",
    "flame": "buildtape.commands.flame:flame_cmd",
    "report": "buildtape.commands.report:report_cmd",
    "history": "buildtape.commands.history:history_cmd",
    "stats": "buildtape.commands.stats:stats_cmd",
    "alerts": "buildtape.commands.alerts:alerts_cmd",
    "check": "buildtape.commands.check:check_cmd",
    "events": "buildtape.commands.events:events_cmd",
    "export": "buildtape.commands.export:export_cmd",
    "gc": "buildtape.commands.gc:gc_cmd",
    "config": "buildtape.commands.config:config_cmd",
}


class _Collector:
    held = False  # set by ``buildtape.__main__``: the collector is off until a command loads


_collector = _Collector()


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        if _collector.held:
            # Everything imported so far lives until the end: no collection need walk it
            # again (``buildtape.__main__`` held collections off during the imports).
            gc.freeze()
            gc.enable()
            _collector.held = False
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="buildtape")
@click.option(
    "--traceback", is_flag=True, help="Show the Python stack on errors (for bug reports)."
)
def cli(traceback: bool) -> None:
    """A flight recorder for software builds.

    \b
    Record a build:      buildtape record -o ci.tape -- make -j8
    Read what happened:  buildtape show ci.tape     (or: buildtape show last)
    Find it again:       buildtape history          (then: buildtape show '#ID')
    Check a tape:        buildtape verify ci.tape

    Each command's --help lists its exit codes; `buildtape record` exits with the
    build's own status so it can sit in front of any CI step.
    """
    # ``_run`` reads --traceback from the arguments itself: it must know before click has
    # parsed them, for an error in parsing.


def main(argv: list[str] | None = None, collector_held: bool = False) -> NoReturn:
    """The console script: runs one command and exits with its code.

    ``collector_held``: the caller turned the garbage collector off for the start-up
    imports; it is turned back on once the command is loaded.
    """
    _collector.held = collector_held
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
        code = cli.main(args=args, prog_name="buildtape", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        # click turns a Ctrl-C anywhere in a command into Abort: an interruption, not a no.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _interrupted()
        click.echo("buildtape: aborted; nothing was run", err=True)
        sys.exit(ExitCode.ABORTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        # The error table loads only when there is an error to map.
        from buildtape.errors import exit_code, message

        if show_tb:
            import traceback

            traceback.print_exc()
        from buildtape.colour import say
        from recorder.trust import printable

        # One line, with any control character from a tape made visible.
        say(f"buildtape: error: {printable(message(exc))}")
        sys.exit(exit_code(exc))
    # A command returns its exit code (None from --help and the like: success).
    sys.exit(ExitCode.OK if code is None else int(code))


def _interrupted() -> NoReturn:
    click.echo("buildtape: interrupted; run the command again to finish it", err=True)
    sys.exit(ExitCode.INTERRUPTED)
