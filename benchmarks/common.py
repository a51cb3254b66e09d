"""What every benchmark does the same way: byte-compile buildtape first, print the result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("buildtape", "recorder", "replay", "flame", "reports", "history")


def byte_compile(root: Path | None = None) -> None:
    """Compile buildtape's modules (of this checkout, or of ``root``) as `pip install` does.
    Where PYTHONDONTWRITEBYTECODE is set (as on the benchmark VM) every run would otherwise
    recompile them, ~0.1 s a run."""
    root = root or ROOT
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *(str(root / p) for p in PACKAGES)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def emit(result: dict[str, Any], json_path: Path | None = None) -> None:
    """Print the result as JSON, and also write it to ``json_path`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")
