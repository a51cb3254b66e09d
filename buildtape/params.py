"""Parameter types and options shared by the commands, and the conventions they keep.

A bad value is a usage error (exit 2) raised while click parses the command line, before
anything runs or anyone is asked anything; a tape that is not there (or not a tape) is
its own exit code, the same in every command (``TAPE``).

The conventions, one spelling each (the old spellings are hidden aliases for one release):
``--format FORMAT`` (``--json`` = ``--format json``), ``-o/--output FILE`` is always a file,
``--limit N`` (``--count``, ``--last``), ``--since WHEN`` (``--period``), ``--home DIR``.
Every command's help ends with an example and its exit codes (``epilog``).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from buildtape.exit_codes import MEANING, ExitCode

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


def size_text(n: int) -> str:
    """Bytes in the syntax ``SIZE`` reads, exact: 67108864 -> ``64M``."""
    for suffix, scale in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


# -- tapes: a path, or a shortcut into the history ----------------------------------------

_SHORTCUT = re.compile(r"^(?:last(?:~(\d+))?|#(\d+))$")


def tape_shortcut(text: str) -> tuple[str, int] | None:
    """``last`` -> ("last", 0), ``last~2`` -> ("last", 2), ``#17`` -> ("id", 17); else None."""
    m = _SHORTCUT.match(text.strip())
    if not m:
        return None
    if m.group(2) is not None:
        return "id", int(m.group(2))
    return "last", int(m.group(1) or 0)


def _history_home(ctx: click.Context | None) -> Path:
    home = ctx.params.get("home") if ctx is not None else None
    if isinstance(home, Path):
        return home
    from buildtape.config import load_here

    return load_here().home


def resolve_tape(text: str, home: Path | None = None) -> Path:
    """The tape a command-line word names: a path, or ``last``, ``last~N``, ``#ID`` (the ID
    ``buildtape history`` shows). A path must be an existing file; raises ``TapeNotFound``
    (no such tape) or ``TapeError`` (a directory, not a tape), the same in every command."""
    from recorder.errors import TapeError, TapeNotFound

    ref = tape_shortcut(text)
    if ref is None:
        path = Path(text)
        if path.is_dir():
            raise TapeError(f"{path} is a directory, not a tape; name the .tape file in it")
        if not path.exists():
            raise TapeNotFound(
                f"no tape at {path}; check the path, or name one from the history: "
                "last, last~1, #ID (see `buildtape history`)"
            )
        return path
    from history.store import HistoryStore

    where = home if home is not None else _history_home(None)
    kind, n = ref
    with HistoryStore(where, create=False) as store:
        found = store.tape_with_id(n) if kind == "id" else store.newest_tape(n)
        count = store.build_count()
    if found is None:
        have = f"it has {count} build(s)" if count else "it is empty"
        raise TapeNotFound(
            f"no tape {text} in the history at {where} ({have}); `buildtape history` "
            "lists the tapes with their IDs"
        )
    path = Path(found)
    if not path.exists():
        raise TapeNotFound(
            f"{text} is {path}, which is gone from disk (moved or deleted); "
            "`buildtape history --reindex` updates the history"
        )
    return path


class TapeArg(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """A tape: a path, or ``last``, ``last~N``, ``#ID`` from the history (resolved in the
    history of ``--home`` when the command has one, else the configured one)."""

    name = "TAPE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            return value
        text = str(value)
        return resolve_tape(text, _history_home(ctx) if tape_shortcut(text) else None)


TAPE = TapeArg()


def tape_argument(name: str = "tape", **kwargs: Any) -> Callable[[F], F]:
    """A TAPE argument (path, ``last``, ``last~N`` or ``#ID``)."""
    return click.argument(name, type=TAPE, **kwargs)


# -- shared options -----------------------------------------------------------------------


def old_spelling(old: str, new: str) -> None:
    """Tell a person at a terminal that an option has a new spelling. A script (stderr
    not a terminal) sees the old spelling behave exactly as before, for one release."""
    if sys.stderr.isatty():
        click.echo(
            f"buildtape: note: {old} is the old spelling of {new}; it goes in the next release",
            err=True,
        )


def _alias(fn: F, target: str, alias: str, old: str, new: str, value: Callable[[Any], Any]) -> F:
    """Wrap ``fn`` so the hidden option ``alias`` (spelled ``old``) sets ``target``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = kwargs.pop(alias, None)
        if given is not None and given is not False:
            old_spelling(old, new)
            kwargs[target] = value(given)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def format_option(choices: Sequence[str], default: str, help_text: str) -> Callable[[F], F]:
    """``--format FORMAT`` (as ``fmt``); with a json choice, ``--json`` is its hidden alias."""

    def decorate(fn: F) -> F:
        if "json" in choices:
            fn = _alias(fn, "fmt", "old_json", "--json", "--format json", lambda _: "json")
            fn = click.option("--json", "old_json", is_flag=True, hidden=True)(fn)
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(list(choices)),
            default=default,
            show_default=True,
            metavar="FORMAT",
            help=f"{help_text} FORMAT: {', '.join(choices)}.",
        )(fn)

    return decorate


def _not_a_directory(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if isinstance(value, str) and value != "-" and Path(value).is_dir():
        raise click.BadParameter(f"{value} is a directory; -o/--output names a file", ctx, param)
    return value


def output_option(help_text: str) -> Callable[[F], F]:
    """``-o/--output FILE`` (as ``output``, a str; ``-`` is stdout): always a file."""
    return click.option("-o", "--output", metavar="FILE", callback=_not_a_directory, help=help_text)


def limit_option(
    default: int | None, help_text: str, aliases: Sequence[str] = ("--count", "--last")
) -> Callable[[F], F]:
    """``--limit N`` (as ``limit``), with the old spellings as hidden aliases."""

    def decorate(fn: F) -> F:
        for old in aliases:
            dest = "old_" + old.lstrip("-")
            fn = _alias(fn, "limit", dest, old, "--limit", int)
            fn = click.option(old, dest, type=click.IntRange(1), hidden=True)(fn)
        return click.option(
            "--limit",
            type=click.IntRange(1),
            default=default,
            show_default=default is not None,
            metavar="N",
            help=help_text,
        )(fn)

    return decorate


def since_option(help_text: str) -> Callable[[F], F]:
    """``--since WHEN`` (as ``since``: the ISO time, or None)."""
    return click.option("--since", type=SINCE, help=f"{help_text} WHEN: 7d, 12h, 30m or ISO 8601.")


def _existing_history(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # A wrong path must fail (in CI above all), not read as an empty history.
    if value is not None and not (value / "history.sqlite").is_file():
        from history.errors import NoHistory

        raise NoHistory(
            f"no history at {value} (no history.sqlite there); check --home, or record a "
            "build first"
        )
    return value


def home_option(fn: F) -> F:
    """``--home``: the history directory, when not the configured one. It must hold a
    history; it is read first, so ``last`` and ``#ID`` resolve in it."""
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        is_eager=True,
        callback=_existing_history,
        help="History directory. Default: $BUILDTAPE_HOME, config `home`, else .buildtape "
        "in the workspace.",
    )(fn)


def json_option(help_text: str) -> Callable[[F], F]:
    """``--format text|json`` (as ``fmt``), ``--json`` its hidden alias."""
    return format_option(("text", "json"), "text", help_text)


# The codes of every command that reads a tape.
TAPE_CODES = (ExitCode.OK, ExitCode.USAGE, ExitCode.BAD_TAPE, ExitCode.NOT_FOUND, ExitCode.IO_ERROR)
# The codes of every command that reads the history.
HISTORY_CODES = (ExitCode.OK, ExitCode.USAGE, ExitCode.NOT_FOUND, ExitCode.IO_ERROR)


def epilog(examples: Sequence[str], codes: Sequence[ExitCode]) -> str:
    """The end of a command's --help: examples, then its exit codes (and 70, always)."""
    shown = sorted({*codes, ExitCode.INTERNAL})
    lines = ["\b", "Examples:", *(f"  {e}" for e in examples), "", "\b", "Exit codes:"]
    lines += [f"  {int(c):>3}  {MEANING[c]}" for c in shown]
    return "\n".join(lines)


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
