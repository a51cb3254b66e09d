"""Every exit code buildtape uses, in one place (documented in docs/cli.md).

Which error gives which code is the table in ``buildtape.errors``."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # diff: the builds differ; replay: did not reproduce; check: alert at or above the level.
    DIFFERENT = 1
    USAGE = 2
    # The tape is corrupt, truncated, of an unknown version, or refused as unsafe.
    BAD_TAPE = 3
    # A file or tape named on the command line does not exist.
    NOT_FOUND = 4
    # Reading or writing failed (disk full, permission denied).
    IO_ERROR = 5
    # An input file is not in the expected format (e.g. no folded stacks in it).
    BAD_INPUT = 6
    # replay/extract could not run (unknown step, sandbox not empty, unsafe restore).
    REPLAY_FAILED = 7
    # The user declined a confirmation (replaying a tape recorded on another host).
    ABORTED = 8
    # Not enough memory to finish (a tape or an input too large for this machine).
    OUT_OF_MEMORY = 9
    # A bug in buildtape: run again with --traceback and report it.
    INTERNAL = 70
    # record: buildtape could not record (the build did not run, or its tape could not be written).
    RECORD_FAILED = 125
    # record: the command exists but cannot be executed.
    NOT_EXECUTABLE = 126
    # record: the command was not found.
    COMMAND_NOT_FOUND = 127
    # Interrupted (Ctrl-C): 128 + SIGINT, as a shell reports it.
    INTERRUPTED = 130


# What each code means, in the one line a command's --help gives it (``params.exit_codes``).
MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.DIFFERENT: "the builds differ / did not reproduce / an alert failed the check",
    ExitCode.USAGE: "bad options or arguments (nothing was run)",
    ExitCode.BAD_TAPE: "not a tape (a directory, another file), or corrupt, or unsafe",
    ExitCode.NOT_FOUND: "no such file, tape or history (`last`, `#ID`: not in the history)",
    ExitCode.IO_ERROR: "reading or writing failed (permission, disk full, the history)",
    ExitCode.BAD_INPUT: "an input is not in the expected format",
    ExitCode.REPLAY_FAILED: "the replay or extraction could not run",
    ExitCode.ABORTED: "you declined, or there was no terminal to ask and no --yes",
    ExitCode.OUT_OF_MEMORY: "not enough memory",
    ExitCode.INTERNAL: "a bug in buildtape: run again with --traceback and report it",
    ExitCode.RECORD_FAILED: "buildtape could not record",
    ExitCode.NOT_EXECUTABLE: "the command cannot be executed",
    ExitCode.COMMAND_NOT_FOUND: "the command was not found",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}
