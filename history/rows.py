"""The rows the history keeps, one frozen dataclass per table.

A row's field names are its table's columns, in the table's order: ``columns()`` and
``values()`` generate the SQL column lists and the parameters of an ``INSERT``, so a row
can never line up with the wrong column. Every table but ``builds`` starts with the tape
it belongs to, which the store adds when it writes the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


class Row:
    """What every row class shares: its table, and the column list its fields make."""

    __slots__ = ()
    TABLE: ClassVar[str]

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.columns())


@dataclass(frozen=True, slots=True)
class BuildRecord(Row):
    """One build, as the ``builds`` table keeps it (lists and objects as JSON text)."""

    TABLE: ClassVar[str] = "builds"
    tape: str
    started_at: str
    status: str
    exit_code: int | None
    duration_s: float
    command: str
    labels: str
    processes: int
    host: str
    workspace: str
    busy_s: float
    # The signal that ended the build (its exit_code is then None), and its git branch.
    signal: str | None = None
    branch: str | None = None


@dataclass(frozen=True, slots=True)
class StepRow(Row):
    """An outermost step (see ``recorder.steps.outermost_steps``), keyed by its
    normalised command line."""

    TABLE: ClassVar[str] = "steps"
    key: str
    argv: str
    start_s: float
    duration_s: float | None
    exit_code: int | None
    signal: str | None


@dataclass(frozen=True, slots=True)
class FailureRow(Row):
    TABLE: ClassVar[str] = "failures"
    key: str
    argv: str
    exit_code: int | None
    signal: str | None
    error_line: str | None


@dataclass(frozen=True, slots=True)
class MetricRow(Row):
    TABLE: ClassVar[str] = "metrics"
    name: str
    value: float
    unit: str | None


@dataclass(frozen=True, slots=True)
class EventRow(Row):
    TABLE: ClassVar[str] = "events"
    t: float
    kind: str
    name: str | None
    data: str


@dataclass(frozen=True, slots=True)
class WarningRow(Row):
    TABLE: ClassVar[str] = "warnings"
    kind: str
    message: str
    path: str | None


@dataclass(frozen=True, slots=True)
class AlertRow(Row):
    """An alert as it was raised; (tape, rule, subject) is kept once."""

    TABLE: ClassVar[str] = "alerts"
    raised_at: str
    tape: str
    level: str
    rule: str
    subject: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.columns()}


@dataclass(frozen=True)
class IndexedRows:
    """Everything the history keeps of one tape."""

    build: BuildRecord
    steps: list[StepRow] = field(default_factory=list)
    failures: list[FailureRow] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    warnings: list[WarningRow] = field(default_factory=list)

    def children(self) -> tuple[tuple[type[Row], list[Any]], ...]:
        """(row class, rows) of every table keyed by the tape, in a fixed order."""
        return (
            (StepRow, self.steps),
            (FailureRow, self.failures),
            (MetricRow, self.metrics),
            (EventRow, self.events),
            (WarningRow, self.warnings),
        )
