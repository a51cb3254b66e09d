"""stats, alerts, check, events, export (CSV, JSON, OTLP), gc and config, on real recordings."""

from __future__ import annotations

import csv
import fcntl
import http.server
import io
import json
import math
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from history.stats import percentile
from tests.conftest import buildtape, needs_strace


def record(ws: Path, *argv: str, env: dict[str, str] | None = None, trace: str = "none") -> None:
    out = buildtape("record", "-q", "--trace", trace, "--", *argv, cwd=ws, env=env)
    assert out.returncode in (0, 1, 2, 3, 4), out.stderr


def cli_json(ws: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(buildtape(*args, "--json", cwd=ws, env=env, check=True).stdout)


def by_hand_percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, written out independently."""
    xs = sorted(values)
    rank = (q / 100) * (len(xs) - 1)
    below = math.floor(rank)
    above = min(below + 1, len(xs) - 1)
    return xs[below] * (1 - (rank - below)) + xs[above] * (rank - below)


def test_percentile_on_known_values() -> None:
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50) == 5.5
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == pytest.approx(9.55)
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99) == pytest.approx(9.91)
    assert percentile([4.0], 99) == 4.0
    assert percentile([], 50) is None


@needs_strace
def test_stats_match_values_computed_by_hand(
    fixture_copy: Callable[..., Path], tmp_path: Path
) -> None:
    ws = fixture_copy("c-make-failing")
    for _ in range(2):
        record(ws, "make", "-j2", trace="auto")
        for obj in ws.glob("*.o"):
            obj.unlink()  # the second build compiles everything again
    for code in (0, 3, 0, 3, 0, 4):
        record(ws, "sh", "-c", f"sleep 0.0{code + 1}; exit {code}")
    builds = cli_json(ws, "history", "--limit", "100")
    s = cli_json(ws, "stats")
    durations = [b["duration_s"] for b in builds]
    assert s["builds"] == 8 and s["succeeded"] == 3 and s["failed"] == 5
    assert s["success_rate"] == round(3 / 8, 6)
    for q in (50, 95, 99):
        assert s["duration_s"][f"p{q}"] == pytest.approx(by_hand_percentile(durations, q), abs=2e-6)
    assert s["duration_s"]["max"] == pytest.approx(max(durations), abs=2e-6)

    groups = {(f["step"], f["exit_code"]): f for f in s["failures"]}
    assert groups[("sh -c 'sleep 0.04; exit 3'", 3)]["count"] == 2
    assert groups[("sh -c 'sleep 0.05; exit 4'", 4)]["count"] == 1
    compile_fail = groups[("cc -O2 -Wall -c parse.c -o parse.o", 1)]
    assert compile_fail["count"] == 2 and compile_fail["builds"] == 2
    assert "parse.c" in compile_fail["example_error"] and "error:" in compile_fail["example_error"]
    assert [f["count"] for f in s["failures"]] == sorted(
        (f["count"] for f in s["failures"]), reverse=True
    )

    slow = {st["step"]: st for st in s["slowest_steps"]}
    compiles = slow["cc -O2 -Wall -c main.c -o main.o"]
    assert compiles["runs"] == 2  # matched across the two make builds
    assert [d["builds"] for d in s["trend"]] and sum(d["builds"] for d in s["trend"]) == 8

    grouped = cli_json(ws, "stats", "--by", "command")
    sizes = {g["group"]: g["builds"] for g in grouped["groups"]}
    assert sizes["make -j2"] == 2 and sizes["sh -c 'sleep 0.04; exit 3'"] == 2
    text = buildtape("stats", cwd=ws, check=True).stdout.decode()
    assert "success rate: 37.5%" in text and "p95" in text


def test_stats_aggregates_custom_metrics(fixture_copy: Callable[..., Path]) -> None:
    ws = fixture_copy("timed-steps")
    for _ in range(3):
        record(ws, "make", "-s", trace="auto")
    metrics = {m["name"]: m for m in cli_json(ws, "stats")["metrics"]}
    link = metrics["link_size"]
    assert (link["count"], link["sum"], link["min"], link["max"], link["mean"]) == (
        3,
        3 * 1004.0,
        1004.0,
        1004.0,
        1004.0,
    )
    assert link["unit"] == "bytes"


@needs_strace
def test_a_slower_step_raises_exactly_the_regression_alert(
    fixture_copy: Callable[..., Path],
) -> None:
    ws = fixture_copy("timed-steps")
    env = {**os.environ, "BUILDTAPE_ALERTS_MIN_BASELINE": "3"}
    for _ in range(3):
        record(ws, "make", "-s", env=env, trace="auto")
    # A noise-sized change: 50 ms slower.
    record(ws, "make", "-s", env={**env, "STEP_LINK_S": "0.15"}, trace="auto")
    assert cli_json(ws, "alerts", env=env) == []
    assert buildtape("check", "--fail-on", "info", cwd=ws, env=env).returncode == 0

    record(ws, "make", "-s", env={**env, "STEP_LINK_S": "1.6"}, trace="auto")
    alerts = cli_json(ws, "alerts", env=env)
    assert [(a["level"], a["rule"], a["subject"]) for a in alerts] == [
        ("warning", "step_regression", "python3 step.py link")
    ]
    failing = buildtape("check", "--fail-on", "warning", cwd=ws, env=env)
    assert failing.returncode == 1
    assert b"step_regression" in failing.stdout and b"check failed" in failing.stderr
    assert buildtape("check", cwd=ws, env=env).returncode == 0  # default --fail-on error
    assert cli_json(ws, "alerts", "--level", "error", env=env) == []
    kept = cli_json(ws, "alerts", "--history", env=env)
    assert len(kept) == 1 and kept[0]["rule"] == "step_regression"  # raised twice, kept once


def test_success_rate_p95_and_metric_rules_from_config(tmp_path: Path) -> None:
    (tmp_path / "buildtape.toml").write_text(
        "[alerts]\nwindow = 3\nmin_baseline = 2\n"
        '[[alerts.metric]]\nname = "size"\nabove = 100\nlevel = "error"\n'
    )
    for _ in range(3):
        record(tmp_path, "sh", "-c", "true")
    # Slow by what this machine measured, not by a guess at how fast `true` records: the
    # window's p95 is at least 0.9 of its slowest build, 0.9 * (2b + 0.6) > 1.5b for the
    # baseline's longest b, however loaded the machine is.
    baseline = max(b["duration_s"] for b in cli_json(tmp_path, "history"))
    slow_ok = f"sleep {2 * baseline + 0.6:.3f}"
    for script in (slow_ok, "exit 1", "exit 1"):
        record(tmp_path, "sh", "-c", script)
    rules = {(a["rule"], a["level"]) for a in cli_json(tmp_path, "alerts")}
    # 1 of the last 3 succeeded: 33% < 50%; their p95 is above 1.5 times the baseline's.
    assert ("success_rate", "critical") in rules and ("p95_duration", "error") in rules
    metric = 'echo \'{"kind": "metric", "name": "size", "value": 150}\' >> "$BUILDTAPE_EVENTS"'
    record(tmp_path, "sh", "-c", metric)
    alerts = cli_json(tmp_path, "alerts")
    assert ("metric", "error", "size") in {(a["rule"], a["level"], a["subject"]) for a in alerts}
    assert buildtape("check", "--fail-on", "critical", cwd=tmp_path).returncode == 1


def test_config_precedence_and_bad_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.buildtape.alerts]\nwindow = 5\n")
    cfg = cli_json(tmp_path, "config")
    assert cfg["values"]["alerts.window"] == 5 and cfg["sources"]["alerts.window"].endswith(
        "pyproject.toml"
    )
    (tmp_path / "buildtape.toml").write_text('home = "elsewhere"\n[alerts]\nwindow = 7\n')
    cfg = cli_json(tmp_path, "config")
    assert cfg["values"]["alerts.window"] == 7 and cfg["home"] == str(tmp_path / "elsewhere")
    env = {**os.environ, "BUILDTAPE_ALERTS_WINDOW": "9"}
    cfg = cli_json(tmp_path, "config", env=env)
    assert (cfg["values"]["alerts.window"], cfg["sources"]["alerts.window"]) == (
        9,
        "$BUILDTAPE_ALERTS_WINDOW",
    )
    record(tmp_path, "true")
    assert (tmp_path / "elsewhere" / "history.sqlite").exists()  # config moved the history

    (tmp_path / "buildtape.toml").write_text("[alerts]\nwindo = 7\n")
    out = buildtape("stats", cwd=tmp_path)
    assert out.returncode == 6
    assert out.stderr.decode().strip() == (
        f"buildtape: error: unknown setting alerts.windo in {tmp_path / 'buildtape.toml'}"
    )
    (tmp_path / "buildtape.toml").write_text("store = false\n")
    before = len(list((tmp_path / "elsewhere").glob("**/*.tape")))
    record(tmp_path, "true")
    assert cli_json(tmp_path, "history") == []  # home is the default again, nothing stored
    assert len(list((tmp_path / "elsewhere").glob("**/*.tape"))) == before


def test_events_across_the_history_and_in_one_tape(tmp_path: Path) -> None:
    emit = 'echo \'{"kind": "event", "name": "cache", "data": {"hit": %d}}\' >> "$BUILDTAPE_EVENTS"'
    for hit in (0, 1):
        record(tmp_path, "sh", "-c", emit % hit)
    events = cli_json(tmp_path, "events", "--type", "event")
    assert [e["data"]["hit"] for e in events] == [1, 0]  # newest build first
    assert len(cli_json(tmp_path, "events", "--type", "event", "--count", "1")) == 1
    outcomes = cli_json(tmp_path, "events", "--type", "build_completed")
    assert len(outcomes) == 2
    tape = events[0]["tape"]
    kinds = [e["kind"] for e in cli_json(tmp_path, "events", tape)]
    assert kinds[0] == "build_started" and "process_started" in kinds and "event" in kinds
    assert buildtape("events", tape, "--since", "1d", cwd=tmp_path).returncode == 2


@needs_strace
def test_csv_export_parses_back_to_the_same_rows(fixture_copy: Callable[..., Path]) -> None:
    ws = fixture_copy("timed-steps")
    for _ in range(2):
        record(ws, "make", "-s", trace="auto")
    record(ws, "sh", "-c", "exit 2")
    json_cols = {"command", "labels", "argv", "data"}
    for what in ("builds", "steps", "events", "metrics"):
        exported = buildtape("export", "--format", "json", "--what", what, cwd=ws, check=True)
        expected = json.loads(exported.stdout)
        out = ws / f"{what}.csv"
        buildtape("export", "--format", "csv", "--what", what, "-o", out, cwd=ws, check=True)
        parsed = list(csv.DictReader(io.StringIO(out.read_text())))
        assert len(parsed) == len(expected) > 0
        for got, want in zip(parsed, expected, strict=True):
            assert set(got) == set(want)
            for key, value in want.items():
                cell = got[key]
                if key in json_cols:
                    assert json.loads(cell) == value
                elif value is None:
                    assert cell == ""
                elif isinstance(value, (int, float)):
                    assert float(cell) == value
                else:
                    assert cell == value
    assert not list(ws.glob(".*.partial"))


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    bodies: ClassVar[list[tuple[str, str, bytes]]] = []
    handler = type("Handler", (_Receiver,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", bodies
    server.shutdown()


def _spans(bodies: list[tuple[str, str, bytes]]) -> list[Any]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    spans = []
    for path, content_type, body in bodies:
        assert path == "/v1/traces" and content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans += [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    return spans


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = (
            [x.string_value for x in v.array_value.values]
            if kind == "array_value"
            else getattr(v, kind)
        )
    return out


@needs_strace
def test_otlp_export_is_one_trace_shaped_like_the_process_tree(
    fixture_copy: Callable[..., Path], tmp_path: Path, otlp_receiver: Any
) -> None:
    endpoint, bodies = otlp_receiver
    ws = fixture_copy("c-make")
    trace_id, parent_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    env = {**os.environ, "TRACEPARENT": f"00-{trace_id}-{parent_span}-01"}
    tape = tmp_path / "b.tape"
    buildtape("record", "-q", "-o", tape, "--", "make", "-j2", cwd=ws, env=env, check=True)
    buildtape("export", "--format", "otlp", "--endpoint", endpoint, tape, cwd=ws, check=True)
    spans = _spans(bodies)
    processes = json.loads(buildtape("show", "--json", tape, check=True).stdout)["processes"]

    assert {s.trace_id.hex() for s in spans} == {trace_id}
    roots = [s for s in spans if s.parent_span_id.hex() == parent_span]
    assert len(roots) == 1 and roots[0].name.startswith("build make -j2")
    root = roots[0]
    by_process = {_attrs(s)["buildtape.process.id"]: s for s in spans if s is not root}
    assert len(spans) == len(processes) + 1 and set(by_process) == {p["id"] for p in processes}
    for p in processes:
        span = by_process[p["id"]]
        attrs = _attrs(span)
        assert attrs["process.command_args"] == p["argv"]
        assert attrs["process.working_directory"] == p["cwd"]
        assert attrs.get("process.exit.code") == p["exit_code"]
        parent = root if p["parent_id"] is None else by_process[p["parent_id"]]
        assert span.parent_span_id == parent.span_id
        assert span.start_time_unix_nano >= root.start_time_unix_nano

    # The same tape exported again sends the same ids: a backend keeps one copy.
    bodies.clear()
    buildtape("export", "--format", "otlp", "--endpoint", endpoint, tape, cwd=ws, check=True)
    assert sorted(s.span_id for s in _spans(bodies)) == sorted(s.span_id for s in spans)
    # ... byte for byte, under any hash seed (the SDK's random service.instance.id was not).
    sent = []
    for seed in ("1", "4242"):
        bodies.clear()
        buildtape("export", "--format", "otlp", "--endpoint", endpoint, tape, cwd=ws,
                  env={**os.environ, "PYTHONHASHSEED": seed}, check=True)  # fmt: skip
        sent.append([body for _, _, body in bodies])
    assert sent[0] == sent[1] and sent[0]


def test_otlp_custom_spans_nest_where_they_ran(tmp_path: Path, otlp_receiver: Any) -> None:
    endpoint, bodies = otlp_receiver
    script = (
        "from buildtape import step\nwith step('outer'):\n    with step('inner'):\n        pass\n"
    )
    tape = tmp_path / "s.tape"
    buildtape("record", "-q", "--trace", "none", "-o", tape, "--", "python3", "-c", script,
              cwd=tmp_path, check=True)  # fmt: skip
    buildtape("export", "--format", "otlp", "--endpoint", endpoint, tape, cwd=tmp_path, check=True)
    spans = {s.name: s for s in _spans(bodies)}
    assert spans["inner"].parent_span_id == spans["outer"].span_id
    assert spans["outer"].parent_span_id == spans["python3"].span_id
    assert len({s.trace_id for s in spans.values()}) == 1


def test_otlp_without_a_receiver_is_one_line_and_exit_5(
    tmp_path: Path, refused_endpoint: str
) -> None:
    tape = tmp_path / "t.tape"
    # In the test's own directory: from pytest's cwd it would index into the checkout's
    # .buildtape/ and read the checkout's pyproject.toml.
    buildtape("record", "-q", "--trace", "none", "-o", tape, "--", "true", cwd=tmp_path,
              check=True)  # fmt: skip
    env = {**os.environ, "BUILDTAPE_OTLP_TIMEOUT_S": "1"}
    out = buildtape("export", "--format", "otlp", "--endpoint", refused_endpoint,
                    tape, cwd=tmp_path, env=env)  # fmt: skip
    assert out.returncode == 5
    lines = out.stderr.decode().strip().splitlines()
    # Where it connects and how long it waits, then the one-line error.
    assert lines[0] == (
        f"buildtape: sending 1 trace(s) to {refused_endpoint} (timeout 1s, --timeout to change)"
    )
    assert len(lines) == 2 and "could not send" in lines[1] and "Traceback" not in lines[1]


def test_gc_keeps_exactly_what_its_options_say(tmp_path: Path) -> None:
    for i in range(5):
        buildtape("record", "-q", "--trace", "none", "--label", f"i={i}", "--", "true",
                  cwd=tmp_path, check=True)  # fmt: skip
    rows = cli_json(tmp_path, "history")
    tapes = [Path(r["tape"]) for r in rows]  # newest first
    assert buildtape("gc", cwd=tmp_path).returncode == 2  # nothing said what to keep

    plan = cli_json(tmp_path, "gc", "--keep-last", "3", "--dry-run")
    assert plan["delete"] == [str(t) for t in tapes[3:]] and all(t.exists() for t in tapes)

    # A recorder rewriting the oldest tape holds a lock on its partial: gc leaves both alone.
    busy = tapes[4].parent / f".{tapes[4].name}.abc123.partial"
    busy.write_bytes(b"")
    stale = tapes[0].parent / ".gone.tape.zzz999.partial"
    stale.write_bytes(b"left by a killed recorder")
    with open(busy, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        buildtape("gc", "--keep-last", "3", cwd=tmp_path, check=True)
    assert [t.exists() for t in tapes] == [True, True, True, False, True]
    assert busy.exists() and not stale.exists()
    busy.unlink()
    assert [r["labels"]["i"] for r in cli_json(tmp_path, "history")] == ["4", "3", "2", "0"]

    size = tapes[0].stat().st_size
    buildtape("gc", "--max-size", str(2 * size + size // 2), cwd=tmp_path, check=True)
    assert [r["labels"]["i"] for r in cli_json(tmp_path, "history")] == ["4", "3"]
    assert [t.exists() for t in tapes] == [True, True, False, False, False]

    tapes[1].unlink()  # deleted by hand: gc drops it from the index
    buildtape("gc", "--keep-days", "1", cwd=tmp_path, check=True)
    assert [r["labels"]["i"] for r in cli_json(tmp_path, "history")] == ["4"]
    buildtape("gc", "--keep-days", "0", cwd=tmp_path, check=True)
    assert cli_json(tmp_path, "history") == [] and not tapes[0].exists()


def test_a_secret_in_an_output_is_a_critical_alert(tmp_path: Path) -> None:
    token = "ghp_" + "A1b2C3d4" * 5
    env = {**os.environ, "DEPLOY_TOKEN": token}
    record(tmp_path, "sh", "-c", 'echo "$DEPLOY_TOKEN" > leaked.txt', env=env)
    alerts = cli_json(tmp_path, "alerts")
    assert [(a["level"], a["rule"], a["subject"]) for a in alerts] == [
        ("critical", "secret_in_output", "leaked.txt")
    ]
    assert token not in json.dumps(alerts)
    assert buildtape("check", "--fail-on", "critical", cwd=tmp_path).returncode == 1


def test_a_schema_1_history_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    home = tmp_path / ".buildtape"
    home.mkdir()
    db = sqlite3.connect(home / "history.sqlite")
    db.execute(
        "CREATE TABLE builds (tape TEXT PRIMARY KEY, started_at TEXT NOT NULL, status TEXT NOT"
        " NULL, exit_code INTEGER, duration_s REAL NOT NULL, command TEXT NOT NULL, labels TEXT"
        " NOT NULL, processes INTEGER NOT NULL, host TEXT NOT NULL, workspace TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO builds VALUES ('/gone.tape', '2026-01-01T00:00:00.000Z', 'succeeded', 0,"
        " 1.5, '[\"make\"]', '{}', 3, 'h', '/w')"
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    record(tmp_path, "true")
    rows = cli_json(tmp_path, "history")
    assert [r["command"] for r in rows] == [["true"], ["make"]]
    assert cli_json(tmp_path, "stats")["builds"] == 2
    db = sqlite3.connect(home / "history.sqlite")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    out = buildtape("history", cwd=tmp_path)
    assert out.returncode == 5 and b"newer buildtape" in out.stderr


def test_queries_on_no_history_are_empty_and_write_nothing(tmp_path: Path) -> None:
    for args in (("stats",), ("alerts",), ("events",), ("history",), ("gc", "--keep-last", "1")):
        out = buildtape(*args, "--json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    assert cli_json(tmp_path, "stats")["builds"] == 0
    # The CI gate is the exception: a history without builds fails it (exit 4).
    assert buildtape("check", cwd=tmp_path).returncode == 4
    assert list(tmp_path.iterdir()) == []  # no .buildtape left behind


def test_bad_options_and_config_values_are_one_line_errors(tmp_path: Path) -> None:
    out = buildtape("stats", "--by", "colour", cwd=tmp_path)
    assert out.returncode == 2 and b"label, label:KEY, command or branch" in out.stderr
    out = buildtape("export", "--format", "otlp", "-o", tmp_path / "x", cwd=tmp_path)
    assert out.returncode == 2 and b"writes no file" in out.stderr
    out = buildtape("gc", "--max-size", "lots", cwd=tmp_path)
    assert out.returncode == 2 and b"is not a size" in out.stderr
    (tmp_path / "buildtape.toml").write_text('[alerts]\nwindow = "twenty"\n')
    out = buildtape("alerts", cwd=tmp_path)
    assert out.returncode == 6
    assert out.stderr.decode().strip() == (
        f"buildtape: error: alerts.window in {tmp_path / 'buildtape.toml'} must be int, "
        "not 'twenty'"
    )
    env = {**os.environ, "BUILDTAPE_STORE": "maybe"}
    (tmp_path / "buildtape.toml").unlink()
    out = buildtape("stats", cwd=tmp_path, env=env)
    assert out.returncode == 6 and b"BUILDTAPE_STORE='maybe' is not a bool" in out.stderr
    # record never fails on config: it warns and records with the defaults.
    rec = buildtape("record", "-q", "--trace", "none", "--", "true", cwd=tmp_path, env=env)
    assert rec.returncode == 0 and b"using the defaults" in rec.stderr


def test_slowest_steps_running_totals_match_the_rows_through_gc(tmp_path: Path) -> None:
    """Over the whole history, slowest steps come from totals kept at index time; over a
    period, from the step rows. Both must agree, also after gc has removed builds."""
    for script in ("sleep 0.05", "sleep 0.05", "sleep 0.1", "sleep 0.05"):
        record(tmp_path, "sh", "-c", script)

    def both() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return (
            cli_json(tmp_path, "stats", "--period", "all")["slowest_steps"],
            cli_json(tmp_path, "stats", "--period", "week")["slowest_steps"],
        )

    everything, week = both()
    assert everything == week
    runs = {s["step"]: s["runs"] for s in everything}
    assert runs == {"sh -c 'sleep 0.05'": 3, "sh -c 'sleep 0.1'": 1}
    buildtape("gc", "--keep-last", "2", cwd=tmp_path, check=True)  # drops two 0.05 s runs
    everything, week = both()
    assert everything == week
    assert {s["step"]: s["runs"] for s in everything} == {
        "sh -c 'sleep 0.05'": 1,
        "sh -c 'sleep 0.1'": 1,
    }
    exported = buildtape("export", "--format", "json", "--what", "steps", cwd=tmp_path)
    longest = {s["step"]: s["max_s"] for s in everything}
    for row in json.loads(exported.stdout):
        assert longest[row["step"]] == pytest.approx(row["duration_s"], abs=1e-6)
