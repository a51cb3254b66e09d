"""buildtape: a flight recorder for software builds."""

from recorder import __version__

__all__ = ["__version__"]
