"""Errors of the front door, and the one table from error classes to exit codes.

Each engine package names what can go wrong in its own light ``errors`` module; the
table below gives each class its exit code. An error takes the code of the first class
of its MRO that the table names, so a subclass can have its own code (``TapeNotFound``
under ``TapeError``) and the order of the table never matters.
"""

from __future__ import annotations

import errno

from buildtape.exit_codes import ExitCode
from flame.errors import FlameAssetError, FoldedFormatError
from history.errors import HistoryError, NoBuildSelected, NoHistory, NothingToExport, OtlpError
from recorder.errors import (
    CommandNotExecutable,
    CommandNotFound,
    NotEnoughSpace,
    RecordError,
    SamplerUnavailable,
    TapeError,
    TapeNotFound,
    TapeNotWritten,
    TapeWriteFailed,
    TracerUnavailable,
)
from replay.errors import (
    ConsentRequired,
    ExtractError,
    ReplayError,
    RestoreError,
    RunError,
    SandboxError,
    WorldError,
)
from reports.errors import ReportAssetError


class ConfigError(Exception):
    """A configuration file or variable is malformed; the message names it."""


class OutputNotWritten(Exception):
    """A command's result could not be written to the file ``-o`` named."""

    def __init__(self, path: str, cause: OSError) -> None:
        if cause.errno == errno.ENOSPC:
            remedy = "free some space or choose another place with -o"
        elif cause.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            remedy = "choose a place you can write to with -o"
        else:
            remedy = "choose another place with -o"
        super().__init__(f"could not write {path}: {cause.strerror or cause}; {remedy}")


EXIT_CODES: dict[type[BaseException], ExitCode] = {
    ConfigError: ExitCode.BAD_INPUT,
    OutputNotWritten: ExitCode.IO_ERROR,
    HistoryError: ExitCode.IO_ERROR,
    # A history named by --home that is not there (a wrong path in CI must fail).
    NoHistory: ExitCode.NOT_FOUND,
    NothingToExport: ExitCode.USAGE,
    NoBuildSelected: ExitCode.NOT_FOUND,
    OtlpError: ExitCode.IO_ERROR,
    RecordError: ExitCode.RECORD_FAILED,
    CommandNotFound: ExitCode.COMMAND_NOT_FOUND,
    CommandNotExecutable: ExitCode.NOT_EXECUTABLE,
    TracerUnavailable: ExitCode.RECORD_FAILED,
    SamplerUnavailable: ExitCode.RECORD_FAILED,
    TapeError: ExitCode.BAD_TAPE,
    TapeNotFound: ExitCode.NOT_FOUND,
    TapeNotWritten: ExitCode.IO_ERROR,
    FoldedFormatError: ExitCode.BAD_INPUT,
    # A packaged file that cannot be read: the message says to reinstall.
    FlameAssetError: ExitCode.IO_ERROR,
    ReportAssetError: ExitCode.IO_ERROR,
    ReplayError: ExitCode.REPLAY_FAILED,
    # No terminal to ask on, no --yes: as if the user had declined.
    ConsentRequired: ExitCode.ABORTED,
    MemoryError: ExitCode.OUT_OF_MEMORY,
    # A restore that would not fit the free space: a full disk, as a write that failed.
    NotEnoughSpace: ExitCode.IO_ERROR,
    ExtractError: ExitCode.REPLAY_FAILED,
    RestoreError: ExitCode.REPLAY_FAILED,
    RunError: ExitCode.REPLAY_FAILED,
    SandboxError: ExitCode.REPLAY_FAILED,
    WorldError: ExitCode.REPLAY_FAILED,
    FileNotFoundError: ExitCode.NOT_FOUND,
    OSError: ExitCode.IO_ERROR,
    KeyboardInterrupt: ExitCode.INTERRUPTED,
}


def exit_code(exc: BaseException) -> int:
    """The exit code of an error that ended a command (INTERNAL for one nobody named)."""
    if isinstance(exc, TapeWriteFailed) and exc.build_status:
        # A failed build still fails the CI step, whatever happened to its tape.
        return exc.build_status
    for cls in type(exc).__mro__:
        code = EXIT_CODES.get(cls)
        if code is not None:
            return code
    return ExitCode.INTERNAL


def message(exc: BaseException) -> str:
    """The one line after ``buildtape: error:``."""
    if isinstance(exc, MemoryError):
        return "out of memory; the tape or input is too large for the memory available here"
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC and not exc.filename:
            # Only stdout is written without a name (a named file is OutputNotWritten).
            return "no space left on device for the output; free some space or send it elsewhere"
        if isinstance(exc, FileNotFoundError) and exc.filename:
            return f"no file at {exc.filename}; check the path"
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if exit_code(exc) == ExitCode.INTERNAL:
        return f"internal error: {exc!r}; run again with --traceback and report it"
    return str(exc)
