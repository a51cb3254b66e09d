"""Parameter types and options shared by the commands.

A bad value is a usage error (exit 2) raised while click parses the command line, before
anything runs or anyone is asked anything.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_SINCE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.I)
_SCALE = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def since_iso(text: str, now: datetime | None = None) -> str:
    """``7d``, ``12h``, ``30m`` (or an ISO 8601 time) -> the ISO time it means."""
    m = _SINCE.match(text.strip())
    now = now or datetime.now(timezone.utc)
    if m:
        delta = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        return (now - delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither like 7d, 12h, 30m nor an ISO time") from None
    return text


def size_bytes(text: str) -> int:
    """``64M``, ``1.5G``, ``4096`` -> bytes (K, M, G, T are powers of 1024)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size like 64M, 1.5G or 4096")
    return int(float(m.group(1)) * _SCALE[m.group(2).lower()])


class Since(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """A point in time as 7d, 12h, 30m or ISO 8601; the value is the ISO time."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return since_iso(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Size(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """A size such as 64M, 1.5G or 4096; the value is in bytes."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return size_bytes(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class KeyValue(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """KEY=VALUE; the value is the pair."""

    name = "KEY=VALUE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, rest = str(value).partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key, rest


class Variations(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """A comma-separated list of replay variations; the value is the sorted names."""

    name = "LIST"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        from replay.errors import VaryError
        from replay.vary import parse_variations

        if isinstance(value, tuple):
            return value
        try:
            return parse_variations(str(value))
        except VaryError as exc:
            self.fail(str(exc), param, ctx)


class GroupBy(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """How ``stats --by`` breaks builds down: label, label:KEY, command or branch."""

    name = "label|label:KEY|command|branch"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text in ("label", "command", "branch") or (text.startswith("label:") and len(text) > 6):
            return text
        self.fail("use label, label:KEY, command or branch", param, ctx)


SINCE = Since()
SIZE = Size()
KEY_VALUE = KeyValue()
VARIATIONS = Variations()
GROUP_BY = GroupBy()


def home_option(fn: F) -> F:
    """``--home``: the history directory, when not the configured one."""
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        help="History directory. Default: $BUILDTAPE_HOME, config `home`, else .buildtape "
        "in the workspace.",
    )(fn)


def json_option(help_text: str) -> Callable[[F], F]:
    """``--json`` (as ``as_json``), with what the JSON holds."""

    def decorate(fn: F) -> F:
        return click.option("--json", "as_json", is_flag=True, help=help_text)(fn)

    return decorate


def size_text(n: int) -> str:
    """Bytes in the syntax ``SIZE`` reads, exact: 67108864 -> ``64M``."""
    for suffix, scale in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def selection_options(fn: F) -> F:
    """``--command``, ``--label`` and ``--branch``: which builds of the history count. The
    command receives them as one ``select`` (a ``history.options.BuildSelection``)."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        select_command: str | None,
        select_labels: tuple[tuple[str, str], ...],
        select_branch: str | None,
        **kwargs: Any,
    ) -> Any:
        from history.options import BuildSelection

        select = BuildSelection(select_command, tuple(select_labels), select_branch)
        return fn(*args, select=select, **kwargs)

    options = (
        click.option(
            "--command",
            "select_command",
            metavar="GLOB",
            help="Only builds whose command line (as `history` shows it) matches this glob, "
            "e.g. 'make*'; without * ? [ the whole line exactly.",
        ),
        click.option(
            "--label",
            "select_labels",
            type=KEY_VALUE,
            multiple=True,
            help="Only builds with this label; repeatable (all must match).",
        ),
        click.option(
            "--branch",
            "select_branch",
            metavar="NAME",
            help="Only builds recorded on this git branch (the checkout's, else the CI "
            "system's branch variable).",
        ),
    )
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
