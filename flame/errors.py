"""What can go wrong while reading stacks or drawing them, one class per meaning
(``buildtape.errors`` maps each to an exit code). Light: imports nothing."""

from __future__ import annotations


class FoldedFormatError(Exception):
    """An input is not folded stacks; the message names the file and the line."""


class FlameAssetError(Exception):
    """A packaged asset of the flame renderer is missing: the installation is broken."""
