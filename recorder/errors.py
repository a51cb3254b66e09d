"""What can stop a recording, each error class naming its meaning (the CLI maps them to codes)."""

from __future__ import annotations


class RecordError(Exception):
    """Recording could not start or could not be written."""


class CommandNotFound(RecordError):
    pass


class CommandNotExecutable(RecordError):
    pass


class TapeWriteFailed(RecordError):
    """The build ran but its tape could not be written; ``build_status`` is how it ended."""

    def __init__(self, message: str, build_status: int | None) -> None:
        super().__init__(message)
        self.build_status = build_status
