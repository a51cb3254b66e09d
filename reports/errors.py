"""What can go wrong while rendering a page (``buildtape.errors`` maps it to an exit code).
Light: imports nothing."""

from __future__ import annotations


class ReportAssetError(Exception):
    """A packaged template or asset of the reports is missing: the installation is broken."""
