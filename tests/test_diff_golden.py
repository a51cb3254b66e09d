"""Golden files for the text and JSON of three diffs, from recordings kept in the repository.

``UPDATE_GOLDEN=1`` rewrites the expected outputs from the kept tapes; ``UPDATE_GOLDEN=retape``
records the tapes again first (with the cases of tests/test_diagnosis.py), then rewrites.
The kept tapes make the outputs deterministic: same tapes, same bytes, whatever the seed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, buildtape, strace_usable
from tests.test_diagnosis import CASES, record_pair

GOLDEN = FIXTURES / "golden" / "diff"
# golden case name -> the seeded case it records
RECIPES = {"make-flag": "mk-flag", "make-env": "mk-cfl", "cmake-source": "cm-src"}
MODE = os.environ.get("UPDATE_GOLDEN", "")


def _retape(name: str, tmp_path: Path) -> None:
    if not strace_usable():
        pytest.skip("recording the golden tapes needs strace")
    [case] = [c for c in CASES if c.id == RECIPES[name]]
    a, b = record_pair(case, tmp_path / "golden" / "c")
    (GOLDEN / name).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(a, GOLDEN / name / "a.tape")
    shutil.copyfile(b, GOLDEN / name / "b.tape")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_diff_matches_its_golden_files(name: str, tmp_path: Path) -> None:
    if MODE == "retape":
        _retape(name, tmp_path)
    case = GOLDEN / name
    a, b = case / "a.tape", case / "b.tape"
    for fmt, expected in (("text", "expected.txt"), ("json", "expected.json")):
        out = buildtape("diff", "--format", fmt, a, b, env={**os.environ, "PYTHONHASHSEED": "7"})
        assert out.returncode == 1, out.stderr.decode()
        if MODE:
            (case / expected).write_bytes(out.stdout)
        assert out.stdout == (case / expected).read_bytes(), f"{name}/{expected} changed"
