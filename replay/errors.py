"""What can go wrong while replaying, extracting or restoring a tape, one class per
meaning (``buildtape.errors`` maps each to an exit code). Light: imports nothing."""

from __future__ import annotations


class ReplayError(Exception):
    """A replay could not run; the message says why."""


class ConsentRequired(ReplayError):
    """The tape was not recorded by this user here, and nobody could be asked (no terminal,
    no --yes)."""


class VaryError(ReplayError):
    """A ``--vary`` run could not be made (an unknown variation, or no outputs to judge)."""


class ExtractError(Exception):
    """The step cannot be extracted (unknown step, directory not empty, unsafe value)."""


class RestoreError(Exception):
    """A tape's workspace could not be restored safely."""


class RunError(Exception):
    """The run could not start; the message says why and what to do."""


class SandboxError(Exception):
    """The requested isolation is not available, or a path cannot be placed safely."""


class WorldError(Exception):
    """The step is unknown, or it ran somewhere a replay cannot put it."""
