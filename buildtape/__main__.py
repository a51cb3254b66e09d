"""``python -m buildtape``, and the console script's first code."""

from __future__ import annotations

import gc
from typing import NoReturn


def main() -> NoReturn:
    # Start-up imports make objects that live until the process ends, and the collector
    # walked them over and over as they came (about 35 ms of CPU before a recording's build
    # started, measured). It is back on once the command is loaded (``buildtape.cli``).
    gc.disable()
    from buildtape.cli import main as run

    run(collector_held=True)


if __name__ == "__main__":
    main()
