"""Whether to write colour: a terminal that did not opt out (https://no-color.org)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any


def wants_colour(stream: IO[Any], env: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is a terminal and ``NO_COLOR`` is unset or empty."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a file at all
        return False
