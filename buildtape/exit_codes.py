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
