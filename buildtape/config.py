"""Settings, from (highest first) the command line, ``BUILDTAPE_*`` environment variables,
``buildtape.toml`` and ``[tool.buildtape]`` in ``pyproject.toml`` at the workspace root.

Every setting has a section and a key (``alerts.window``); its environment variable is
``BUILDTAPE_`` + section + key in capitals (``BUILDTAPE_ALERTS_WINDOW``), except the
top-level ones (``home`` -> ``BUILDTAPE_HOME``). Unknown keys and wrong types are errors
that name the file, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEVELS = ("info", "warning", "error", "critical")


class ConfigError(Exception):
    """A configuration file or variable is malformed; the message names it."""


# section -> key -> (type, default). "" is the top level.
SCHEMA: dict[str, dict[str, tuple[type, Any]]] = {
    "": {"home": (str, None), "store": (bool, True)},
    "alerts": {
        # The newest `window` builds are compared with the `baseline` builds before them.
        "window": (int, 20),
        "baseline": (int, 20),
        "min_baseline": (int, 5),
        "success_rate_warning": (float, 0.8),
        "success_rate_critical": (float, 0.5),
        "p95_ratio": (float, 1.5),
        "step_ratio": (float, 1.2),
        "step_min_s": (float, 1.0),
        "step_mads": (float, 3.0),
    },
    "gc": {"keep_days": (int, None), "keep_last": (int, None), "max_size": (str, None)},
    "otlp": {"endpoint": (str, "http://localhost:4318/v1/traces"), "timeout_s": (float, 10.0)},
}


@dataclass(frozen=True)
class MetricRule:
    """A custom threshold on a metric from $BUILDTAPE_EVENTS, checked on the newest build."""

    name: str
    level: str
    above: float | None = None
    below: float | None = None


@dataclass(frozen=True)
class Config:
    workspace: Path
    values: dict[str, Any]
    # "section.key" -> where its value came from, for `buildtape config`.
    sources: dict[str, str]
    metric_rules: list[MetricRule] = field(default_factory=list)

    def get(self, dotted: str) -> Any:
        return self.values[dotted]

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


def load_here(env: Mapping[str, str] | None = None) -> Config:
    return load(workspace_root(), env)
