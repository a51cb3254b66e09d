"""The options of every history operation, documented once, defaults in one place.

Light on purpose (dataclasses only): the settings (``buildtape.config``) and the command
line read their defaults from here without loading the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LEVELS = ("info", "warning", "error", "critical")
PERIODS = ("hour", "day", "week", "all")


# A build the history counts as interrupted, not failed: the recorder was interrupted, or
# the build died of SIGINT or SIGTERM, or exited 130 or 143 (how a shell reports them).
INTERRUPT_SIGNALS = ("SIGINT", "SIGTERM")
INTERRUPT_EXIT_CODES = (130, 143)


@dataclass(frozen=True)
class BuildSelection:
    """Which builds ``stats``, ``alerts`` and ``check`` look at; empty: all of them."""

    # Only builds whose command line, shell-quoted as ``history`` shows it, matches this
    # glob (``*``, ``?``, ``[...]``; without them, the whole line exactly).
    command: str | None = None
    # Only builds carrying every one of these labels (KEY, VALUE).
    labels: tuple[tuple[str, str], ...] = ()
    # Only builds recorded on this git branch (the checkout's, else the CI system's
    # branch variable recorded in the environment; see ``history.indexing.branch_of``).
    branch: str | None = None

    @property
    def everything(self) -> bool:
        return self.command is None and not self.labels and self.branch is None


@dataclass(frozen=True)
class StatsOptions:
    # Only builds started in the last hour, day or week; "all": the whole history.
    period: str = "all"
    # Also break the build figures down: "label" (the whole label set), "label:KEY"
    # (one label's value), "command" or "branch"; None: no breakdown.
    by: str | None = None
    # How many of the slowest steps to list.
    slowest: int = 10
    # Only builds started at or after this ISO time (``--since``); wins over ``period``.
    since: str | None = None
    # Which builds count at all.
    select: BuildSelection = field(default_factory=BuildSelection)


@dataclass(frozen=True)
class MetricRule:
    """A custom threshold on a metric from $BUILDTAPE_EVENTS, checked on the newest build."""

    name: str
    level: str
    above: float | None = None
    below: float | None = None


@dataclass(frozen=True)
class AlertOptions:
    """The thresholds of ``buildtape alerts``; the settings ``alerts.*`` are these fields."""

    # The newest `window` builds are compared with the `baseline` builds before them.
    window: int = 20
    baseline: int = 20
    # A rule needs this many builds in its baseline before it judges anything.
    min_baseline: int = 5
    # Success rate over the window below these: warning, critical.
    success_rate_warning: float = 0.8
    success_rate_critical: float = 0.5
    # p95 duration of the window above this times the baseline's: error.
    p95_ratio: float = 1.5
    # A step slower than its baseline median by all three: warning.
    step_ratio: float = 1.2
    step_min_s: float = 1.0
    step_mads: float = 3.0
    # Custom thresholds on metrics ([[tool.buildtape.alerts.metric]]).
    metric_rules: tuple[MetricRule, ...] = ()


@dataclass(frozen=True)
class RetentionOptions:
    """What ``buildtape gc`` keeps: a tape is kept when any keep rule keeps it."""

    # Keep the newest N builds.
    keep_last: int | None = None
    # Keep builds started within N days.
    keep_days: int | None = None
    # Then cap the kept tapes' total size in bytes, dropping the oldest first.
    max_bytes: int | None = None

    @property
    def keeps_anything(self) -> bool:
        """Whether any rule is set (with none, there is nothing to decide)."""
        return not (self.keep_last is None and self.keep_days is None and self.max_bytes is None)


@dataclass(frozen=True)
class ExportOptions:
    # Which rows: builds, events, metrics or steps (history.store.EXPORTABLE).
    what: str = "builds"
    # Only builds started at or after this ISO time.
    since: str | None = None


@dataclass(frozen=True)
class EventQuery:
    # Only events of this kind (event, metric, span, ...); None: all.
    kind: str | None = None
    # History: only builds started at or after this ISO time.
    since: str | None = None
    # At most this many events.
    count: int = 100


@dataclass(frozen=True)
class OtlpOptions:
    """Where and how traces are sent; the settings ``otlp.*`` are these fields."""

    # The OTLP/HTTP traces URL.
    endpoint: str = "http://localhost:4318/v1/traces"
    # Seconds to wait for the receiver before giving up.
    timeout_s: float = 10.0


@dataclass(frozen=True)
class ReindexOptions:
    # Files and directories whose tapes (``*.tape``, recursively) are indexed.
    roots: tuple[Path, ...]
