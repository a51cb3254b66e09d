"""Settings, from (highest first) the command line, ``BUILDTAPE_*`` environment variables,
``buildtape.toml`` and ``[tool.buildtape]`` in ``pyproject.toml`` at the workspace root.

Every setting has a section and a key (``alerts.window``); its environment variable is
``BUILDTAPE_`` + section + key in capitals (``BUILDTAPE_ALERTS_WINDOW``), except the
top-level ones (``home`` -> ``BUILDTAPE_HOME``). Unknown keys and wrong types are errors
that name the file, so a typo never silently falls back to a default.

The sections ``alerts`` and ``otlp`` are the fields of ``history``'s option dataclasses,
with their defaults: a setting and its default are written down once.
"""

from __future__ import annotations

import os
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from buildtape.errors import ConfigError
from history.options import LEVELS, AlertOptions, MetricRule, OtlpOptions


@dataclass(frozen=True)
class GcSettings:
    """Defaults of ``buildtape gc`` (its options say the same; they win)."""

    keep_days: int | None = None
    keep_last: int | None = None
    # A size such as 5G (``buildtape.params.SIZE`` reads it).
    max_size: str | None = None


def _section(options: type[Any], skip: tuple[str, ...] = ()) -> dict[str, tuple[type, Any]]:
    """key -> (type, default) of a dataclass's fields; ``X | None`` is X."""
    hints = typing.get_type_hints(options)
    out: dict[str, tuple[type, Any]] = {}
    for f in fields(options):
        if f.name in skip:
            continue
        hint = hints[f.name]
        if isinstance(hint, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        out[f.name] = (hint, f.default)
    return out


# section -> key -> (type, default). "" is the top level.
SCHEMA: dict[str, dict[str, tuple[type, Any]]] = {
    "": {"home": (str, None), "store": (bool, True)},
    "alerts": _section(AlertOptions, skip=("metric_rules",)),
    "gc": _section(GcSettings),
    "otlp": _section(OtlpOptions),
}


@dataclass(frozen=True)
class Config:
    workspace: Path
    # "section.key" -> value, and where it came from (for `buildtape config`).
    values: dict[str, Any]
    sources: dict[str, str]
    metric_rules: list[MetricRule] = field(default_factory=list)

    def _of(self, section: str) -> dict[str, Any]:
        return {key: self.values[f"{section}.{key}"] for key in SCHEMA[section]}

    @property
    def alerts(self) -> AlertOptions:
        return AlertOptions(**self._of("alerts"), metric_rules=tuple(self.metric_rules))

    @property
    def otlp(self) -> OtlpOptions:
        return OtlpOptions(**self._of("otlp"))

    @property
    def gc(self) -> GcSettings:
        return GcSettings(**self._of("gc"))

    @property
    def store(self) -> bool:
        """Whether ``record`` indexes its tape into the history."""
        return bool(self.values["store"])

    @property
    def home(self) -> Path:
        raw = self.values["home"]
        if not raw:
            return self.workspace / ".buildtape"
        path = Path(os.path.expanduser(raw))
        return path if path.is_absolute() else self.workspace / path


def _dotted(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def env_name(section: str, key: str) -> str:
    return ("BUILDTAPE_" + (f"{section}_" if section else "") + key).upper()


def _coerce(kind: type, value: Any, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {kind.__name__}, not {value!r}")
    return value


def _from_env_text(kind: type, text: str, where: str) -> Any:
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise ConfigError(f"{where}={text!r} is not a {kind.__name__}") from None


def _read_toml(path: Path, table: str | None) -> dict[str, Any]:
    # Imported here: most workspaces have no config, and record's start-up is build time.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    if table is None:
        return dict(data)
    section: Any = data.get("tool", {}).get(table, {})
    if not isinstance(section, dict):
        raise ConfigError(f"[tool.{table}] in {path} must be a table")
    return section


def _apply_file(
    raw: dict[str, Any],
    where: str,
    values: dict[str, Any],
    sources: dict[str, str],
    rules: list[MetricRule],
) -> None:
    for name, value in raw.items():
        if name in SCHEMA and name:
            if not isinstance(value, dict):
                raise ConfigError(f"{name} in {where} must be a table")
            for key, item in value.items():
                if name == "alerts" and key == "metric":
                    rules[:] = _metric_rules(item, where)
                    continue
                if key not in SCHEMA[name]:
                    raise ConfigError(f"unknown setting {name}.{key} in {where}")
                values[_dotted(name, key)] = _coerce(
                    SCHEMA[name][key][0], item, f"{name}.{key} in {where}"
                )
                sources[_dotted(name, key)] = where
        elif name in SCHEMA[""]:
            values[name] = _coerce(SCHEMA[""][name][0], value, f"{name} in {where}")
            sources[name] = where
        else:
            raise ConfigError(f"unknown setting {name} in {where}")


def _metric_rules(raw: Any, where: str) -> list[MetricRule]:
    if not isinstance(raw, list):
        raise ConfigError(f"alerts.metric in {where} must be an array of tables")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"each alerts.metric in {where} needs a name")
        unknown = set(item) - {"name", "level", "above", "below"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)} in alerts.metric in {where}")
        level = item.get("level", "warning")
        if level not in LEVELS:
            raise ConfigError(f"alerts.metric level must be one of {', '.join(LEVELS)}")
        bounds = [item.get(k) for k in ("above", "below")]
        if all(b is None for b in bounds):
            raise ConfigError(f"alerts.metric {item['name']!r} in {where} needs above or below")
        above, below = (
            None if b is None else _coerce(float, b, f"alerts.metric {k}")
            for b, k in zip(bounds, ("above", "below"), strict=True)
        )
        out.append(MetricRule(item["name"], level, above, below))
    return out


def load(workspace: Path, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    values = {_dotted(s, k): d for s, keys in SCHEMA.items() for k, (_, d) in keys.items()}
    sources = dict.fromkeys(values, "default")
    rules: list[MetricRule] = []
    pyproject = workspace / "pyproject.toml"
    if pyproject.is_file():
        _apply_file(_read_toml(pyproject, "buildtape"), str(pyproject), values, sources, rules)
    own = workspace / "buildtape.toml"
    if own.is_file():
        _apply_file(_read_toml(own, None), str(own), values, sources, rules)
    for section, keys in SCHEMA.items():
        for key, (kind, _) in keys.items():
            name = env_name(section, key)
            if env.get(name) is not None:
                values[_dotted(section, key)] = _from_env_text(kind, env[name], name)
                sources[_dotted(section, key)] = f"${name}"
    return Config(workspace, values, sources, rules)


def workspace_root(cwd: Path | None = None) -> Path:
    from recorder.git import git_toplevel

    cwd = cwd or Path.cwd()
    return git_toplevel(cwd) or cwd


def recorded_workspace(cwd: Path | None = None) -> Path:
    """The workspace whose history a command run here reads: the nearest directory from
    ``cwd`` up to the git top level that has one (``record --workspace DIR`` keeps it in
    ``DIR/.buildtape``), else the workspace a ``record`` started here would take."""
    cwd = (cwd or Path.cwd()).absolute()
    root = workspace_root(cwd)
    for here in (cwd, *cwd.parents):
        if (here / ".buildtape" / "history.sqlite").is_file():
            return here
        if here == root or root not in here.parents:
            break
    return root


def load_here(env: Mapping[str, str] | None = None) -> Config:
    return load(recorded_workspace(), env)
