"""Golden files of what buildtape says about crafted tapes (every time, host and path
fixed): ``show``, ``diff``, ``stats --json`` and the report's data. A change to any of
these outputs shows up here as a diff to review; ``UPDATE_GOLDEN=1`` blesses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import buildtape
from tests.crafted import write_crafted
from tests.golden import GOLDEN, check_golden

HERE = GOLDEN / "crafted"


@pytest.fixture
def tapes(tmp_path: Path) -> Path:
    write_crafted(tmp_path / "good.tape", "good")
    write_crafted(tmp_path / "bad.tape", "bad")
    return tmp_path


@pytest.mark.parametrize("variant", ["good", "bad"])
def test_show(tapes: Path, variant: str) -> None:
    text = buildtape("show", f"{variant}.tape", cwd=tapes, check=True).stdout
    check_golden(text, HERE / f"show-{variant}.txt")
    as_json = buildtape("show", "--json", f"{variant}.tape", cwd=tapes, check=True).stdout
    check_golden(as_json, HERE / f"show-{variant}.json")


def test_diff(tapes: Path) -> None:
    text = buildtape("diff", "good.tape", "bad.tape", cwd=tapes)
    assert text.returncode == 1, text.stderr
    check_golden(text.stdout, HERE / "diff.txt")
    as_json = buildtape("diff", "--format", "json", "good.tape", "bad.tape", cwd=tapes)
    check_golden(as_json.stdout, HERE / "diff.json")


def test_stats_json(tmp_path: Path) -> None:
    builds = tmp_path / "builds"
    builds.mkdir()
    for day in range(1, 7):
        variant = "bad" if day in (3, 6) else "good"
        write_crafted(builds / f"{day}.tape", variant, f"2026-01-0{day}T03:04:05.000Z")
    home = tmp_path / "home"
    buildtape("history", "--reindex", "--scan", builds, "--home", home, cwd=tmp_path, check=True)
    out = buildtape("stats", "--json", "--home", home, "--by", "label:variant", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    # The history's own paths are the one thing that is not fixed.
    text = out.stdout.decode().replace(str(tmp_path), "$TMP")
    assert json.loads(text)["builds"] == 6
    check_golden(text, HERE / "stats.json")
    table = buildtape("stats", "--home", home, "--by", "label:variant", cwd=tmp_path, check=True)
    check_golden(table.stdout.decode().replace(str(tmp_path), "$TMP"), HERE / "stats.txt")


def test_report_data(tapes: Path) -> None:
    from recorder.tape import open_tape
    from reports.data import report_payload

    for variant in ("good", "bad"):
        with open_tape(tapes / f"{variant}.tape") as t:
            data = report_payload(t)
        text = json.dumps(data, indent=1, sort_keys=True).replace(str(tapes), "$TMP") + "\n"
        check_golden(text, HERE / f"report-{variant}.json")
