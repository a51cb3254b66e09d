"""What can go wrong with the history, one class per meaning (``buildtape.errors`` maps
each to an exit code). Light on purpose: importing it loads nothing else."""

from __future__ import annotations


class HistoryError(Exception):
    """The history cannot be read or written; the message says why."""


class HistoryTooNew(HistoryError):
    """The history was written by a newer buildtape (a schema this one does not know)."""


class NoBuildSelected(HistoryError):
    """``--command``, ``--label`` or ``--branch`` select no build of the history: a gate
    that judged nothing would pass on a typo."""


class NothingToExport(HistoryError):
    """An export was asked of an empty history (or an empty period of it)."""


class OtlpError(Exception):
    """A trace could not be built or sent; the message says what to do."""


class OtlpUnavailable(OtlpError):
    """The OpenTelemetry SDK is not installed."""


class NoHistory(HistoryError):
    """A history named explicitly (``--home``) does not exist."""
