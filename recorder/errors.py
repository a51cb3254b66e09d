"""What can go wrong while recording or reading a tape, one class per meaning
(``buildtape.errors`` maps each to an exit code). Light on purpose: importing it loads
nothing else, so the CLI can name these classes without loading the recorder."""

from __future__ import annotations


class TapeError(Exception):
    """A tape cannot be read or written; the message says what and what to do."""


class TapeNotFound(TapeError):
    """No tape exists at the path given."""


class TapeNotWritten(TapeError):
    """Writing a tape failed (disk full, permission denied): an I/O error, not a bad tape."""


class BudgetExceeded(TapeError):
    """Restoring a tape would exceed a ceiling (recorder/trust.py): the message names the
    variable that raises it."""


class NotEnoughSpace(Exception):
    """The filesystem a restore writes to has too little free space for it. Not the
    tape's fault (so not a ``TapeError``): the disk is full, as when a write fails."""


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


class TracerUnavailable(Exception):
    """The tracer that was asked for by name cannot run here."""


class SamplerUnavailable(Exception):
    """The sampler asked for by name cannot run here."""
