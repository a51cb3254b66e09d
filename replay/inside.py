"""The recorder's entry point inside a replay sandbox: ``python -m replay.inside SPEC``.

The sandbox (``replay.sandbox``) starts this interpreter with the restored workspace at
its recorded path; it records the build there and writes its exit status, the recorder's
notices and any error as JSON beside the tape, for the replay outside to read.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from recorder.errors import RecordError
from recorder.record import RecordOptions, record


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    notes: list[str] = []
    result: dict[str, Any] = {"exit_status": None, "notes": notes, "error": None}
    os.umask(int(spec["umask"], 8))
    # The recorder notes each tape it writes as recorded here; this one is the replay's
    # own, and the user's list is read-only in the sandbox: a list of its own, beside it.
    os.environ["XDG_STATE_HOME"] = str(Path(spec["result"]).parent / "state")
    try:
        recorded = record(
            RecordOptions(
                argv=tuple(spec["argv"]),
                output=Path(spec["tape"]),
                workspace=Path(spec["workspace"]),
                cwd=Path(spec["cwd"]),
                trace=spec["trace"],
                env=spec["env"],
                use_tty=False,
                stacks="none",
            ),
            notes.append,
        )
        result["exit_status"] = recorded.exit_status
    except RecordError as exc:
        result["error"] = str(exc)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
