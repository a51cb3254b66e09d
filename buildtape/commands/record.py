"""``buildtape record``: run a build command and record it into a tape."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from buildtape.colour import say
from buildtape.config import Config, workspace_root
from buildtape.config import load as load_config
from buildtape.errors import ConfigError
from buildtape.exit_codes import ExitCode
from buildtape.params import KEY_VALUE, SIZE, epilog, size_text
from buildtape.text.units import seconds
from recorder.options import SNAPSHOT_MODES, RecordOptions
from recorder.record import TapeWriteFailed, record
from recorder.sampling import SAMPLERS
from recorder.secrets import SecretPolicy
from recorder.tracing import FILE_EVENT_SOURCES, TRACE_MODES

if TYPE_CHECKING:
    from recorder.model import Manifest


def _config(workspace: Path) -> Config | None:
    """The workspace's settings; a broken config is a warning, never a reason not to build."""
    try:
        return load_config(workspace)
    except ConfigError as exc:
        say(f"buildtape: warning: {exc}; using the defaults")
        return None


def _refuse_outside(workspace: Path) -> None:
    """The build must start inside its workspace: a replay restores the workspace and
    starts the command where it started, which would not be in what was restored."""
    cwd = Path.cwd().resolve()
    root = workspace.resolve()
    if cwd != root and root not in cwd.parents:
        raise click.UsageError(
            f"the current directory {cwd} is outside the workspace {root}, so the tape could "
            f"not be replayed; run from inside it (cd {workspace} && buildtape record ... "
            "-- make), or give --workspace a directory that contains the current one"
        )


def _refuse_overwrite(output: Path | None) -> None:
    """-o never replaces a file that is not a tape (a typo must not cost a file)."""
    if output is None or not output.exists():
        return
    from recorder.container import TapeReader
    from recorder.errors import TapeError

    try:
        with TapeReader(output, index_only=True):
            return
    except (TapeError, OSError):
        pass
    raise click.UsageError(
        f"{output} exists and is not a tape; buildtape will not overwrite it: choose another "
        "-o, or remove it first"
    )


def _prefetch_indexing() -> None:
    """Import what indexing needs. It runs while the build does, not after it."""
    import history.indexing
    import history.store  # noqa: F401


class _Indexer:
    """Adds the tape to the history while it is synced to disk (``record``'s
    ``while_syncing``); a failure is a warning, never the build's status."""

    def __init__(self, cfg: Config | None) -> None:
        self._cfg = cfg
        self._added: tuple[Path, Path] | None = None  # (history home, tape)

    def __call__(self, tape: Path, manifest: Manifest, stderr: bytes) -> None:
        from history.errors import HistoryError
        from history.indexing import index_tape
        from history.store import HistoryStore

        try:
            home = self._cfg.home if self._cfg else Path(manifest.workspace) / ".buildtape"
            with HistoryStore(home) as store:
                index_tape(store, tape, manifest, stderr)
            self._added = (home, tape)
        except HistoryError as exc:
            say(f"buildtape: warning: {exc}")

    def undo(self) -> None:
        """The tape could not be written after all: its row goes too."""
        from history.errors import HistoryError
        from history.store import HistoryStore

        if self._added is not None:
            home, tape = self._added
            with contextlib.suppress(HistoryError), HistoryStore(home) as store:
                store.forget([str(tape.resolve())])


EXAMPLES = [
    "buildtape record -- make -j8",
    "buildtape record -o fail.tape --label ci=github -- ninja -C build",
    "buildtape record --trace proc -- ./build.sh     # where ptrace is not allowed",
    "buildtape show last                             # then: what was recorded",
]
CODES = (
    ExitCode.OK,
    ExitCode.USAGE,
    ExitCode.RECORD_FAILED,
    ExitCode.NOT_EXECUTABLE,
    ExitCode.COMMAND_NOT_FOUND,
    ExitCode.INTERRUPTED,
)
BUILD_STATUS = "any  the build's own exit status, 128+N when killed by signal N"


@click.command(
    "record",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog=epilog(EXAMPLES, CODES) + f"\n  {BUILD_STATUS}",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tape to write. Default: <history>/tapes/<time>-<cmd>-<pid>.tape, where the "
    "history is .buildtape in the workspace unless BUILDTAPE_HOME or config moves it.",
)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Root to snapshot before and after. Default: the git top level, else the cwd.",
)
@click.option(
    "--trace",
    type=click.Choice(TRACE_MODES),
    default=RecordOptions.trace,
    show_default=True,
    help="How to see processes: preload (an LD_PRELOAD interposer compiled once with cc: "
    "exec, fork, exit statuses and files, nothing stopped; blind under static executables), "
    "strace (full fidelity: every process and file, static ones too; slower on "
    "process-heavy builds), proc (/proc polling; short processes may be missed), none "
    "(root process only); auto: preload, else strace, else proc.",
)
@click.option(
    "--snapshot",
    type=click.Choice(SNAPSHOT_MODES),
    default=RecordOptions.snapshot,
    show_default=True,
    help="touched: store the content of what the build read or wrote (and the pre-build "
    "content of what it changed), list the rest by stat; full: store every workspace file.",
)
@click.option(
    "--file-events",
    type=click.Choice(FILE_EVENT_SOURCES),
    default=RecordOptions.file_events,
    show_default=True,
    help="Where per-process file reads and writes come from: preload (an LD_PRELOAD shim, "
    "compiled once with cc; no ptrace stops) or strace (tracing openat: slower, but also sees "
    "static binaries); auto: preload when the shim builds, else strace.",
)
@click.option(
    "--stacks",
    type=click.Choice(SAMPLERS),
    default=RecordOptions.stacks,
    show_default=True,
    help="Sample the build's Python processes: py-spy (reads memory, no pause; needs ptrace "
    "permission), pyinstrument (injected with a sitecustomize; no privilege, but slows "
    "call-heavy code) or thread (a sampling thread injected the same way; cheap); auto picks "
    "py-spy when ptrace works, else the sampling thread.",
)
@click.option(
    "--rate",
    type=click.IntRange(1, 10_000),
    default=RecordOptions.rate,
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
    "--label", multiple=True, type=KEY_VALUE, help="Attach a label to the tape. Repeatable."
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
    type=SIZE,
    default=RecordOptions.max_store_bytes,
    show_default=size_text(RecordOptions.max_store_bytes),
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
@click.option("--no-store", is_flag=True, help="Do not index this tape into the history.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def record_cmd(
    output: Path | None,
    workspace: Path | None,
    trace: str,
    snapshot: str,
    file_events: str,
    stacks: str,
    rate: int,
    exclude: tuple[str, ...],
    label: tuple[tuple[str, str], ...],
    redact: tuple[str, ...],
    no_redact: tuple[str, ...],
    max_store_size: int,
    no_tty: bool,
    quiet: bool,
    no_store: bool,
    command: tuple[str, ...],
) -> int:
    """Run COMMAND, pass its output and exit status through, and record it into a tape.

    Run it from inside the workspace (the build's starting directory must be in what a
    replay restores). -o replaces an older tape, never another file.

    Secrets in the environment (names like *TOKEN*, *SECRET*, *PASSWORD*, *_KEY, and
    credential-shaped values) are redacted, and their values scrubbed from everything
    captured. A build step can add events by appending JSON lines to $BUILDTAPE_EVENTS.
    """
    # Found once here (git rev-parse), for the config and for the recording.
    workspace = workspace or workspace_root()
    _refuse_outside(workspace)
    _refuse_overwrite(output)
    cfg = _config(workspace)
    options = RecordOptions(
        argv=command,
        output=output,
        tapes_dir=cfg.home / "tapes" if cfg else None,
        workspace=workspace,
        trace=trace,
        snapshot=snapshot,
        file_events=file_events,
        stacks=stacks,
        rate=rate,
        excludes=exclude,
        labels=label,
        secrets=SecretPolicy(extra_secret_names=redact, extra_allowed_names=no_redact),
        max_store_bytes=max_store_size,
        use_tty=not no_tty,
    )

    def notify(message: str) -> None:
        say(f"buildtape: note: {message}")

    store = not no_store and (cfg is None or cfg.store)
    indexer = _Indexer(cfg) if store else None
    try:
        result = record(options, notify, _prefetch_indexing if indexer else None, indexer)
    except TapeWriteFailed:
        if indexer is not None:
            indexer.undo()
        raise
    m = result.manifest
    if not quiet:
        say(
            f"buildtape: {m.status}, {len(m.processes)} processes, {seconds(m.duration_s)}; "
            f"tape: {result.tape}"
        )
    # The build's own status: record is a transparent wrapper.
    return result.exit_status
