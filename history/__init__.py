"""The history of many tapes: an SQLite store, indexing, stats, alerts, retention, export
and OpenTelemetry traces.

Every module here takes an options dataclass and returns typed results; none prints or
exits. ``history.store`` is the only module that speaks SQL. The package reads tapes
through ``recorder`` and imports nothing else of buildtape's.
"""
