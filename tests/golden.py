"""Golden files: compare an output with ``fixtures/golden/...``; ``UPDATE_GOLDEN=1``
rewrites the file instead, for a change that is intended (review its diff)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import FIXTURES

GOLDEN = FIXTURES / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def check_golden(actual: bytes | str, expected_path: Path) -> None:
    """Compare with the golden file; UPDATE_GOLDEN=1 rewrites it instead."""
    data = actual.encode() if isinstance(actual, str) else actual
    if UPDATE:
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        expected_path.write_bytes(data)
        return
    assert expected_path.exists(), f"no golden file {expected_path}: run with UPDATE_GOLDEN=1"
    assert data == expected_path.read_bytes(), (
        f"{expected_path.name} differs from its golden file; if the change is intended, "
        "re-run with UPDATE_GOLDEN=1 and review the diff"
    )
