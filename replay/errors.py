"""What can go wrong while replaying, extracting or restoring a tape, one class per
meaning (``buildtape.errors`` maps each to an exit code). Light: imports nothing."""

from __future__ import annotations


class ReplayError(Exception):
    """A replay could not run; the message says why."""


class VaryError(ReplayError):
    """A ``--vary`` run could not be made (an unknown variation, or no outputs to judge)."""


class ExtractError(Exception):
    """A step could not be extracted (an unknown step, or a directory that is not empty)."""


class RestoreError(Exception):
    """A tape's workspace could not be restored safely."""
